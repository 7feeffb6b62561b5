package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
)

// kubeRequestTimeout bounds each API request unless --request-timeout says
// otherwise, so that an unreachable cluster gives an error instead of a
// hang. kubectl's own default is no timeout; ferry's commands are short
// reads and writes, and its waits poll.
const kubeRequestTimeout = 30 * time.Second

// addKubeFlags registers kubectl's own connection flags
// (k8s.io/cli-runtime's ConfigFlags: --kubeconfig, --context, -n, --as,
// --as-group, --token, --server, --request-timeout, ...), so that each
// means exactly what it means to kubectl and `kubectl ferry` takes the
// flags kubectl passes on. Each command tree has its own set; commands read
// it through kubeConnect.
func addKubeFlags(fs *pflag.FlagSet) *genericclioptions.ConfigFlags {
	kf := genericclioptions.NewConfigFlags(true)
	*kf.Timeout = kubeRequestTimeout.String()
	kf.AddFlags(fs)
	return kf
}

// kubeTarget is a connection to one cluster and what names it in messages.
type kubeTarget struct {
	Client    client.Client
	Config    *rest.Config
	Context   string
	Namespace string
}

var quietControllerRuntime sync.Once

// kubeScheme knows every type the CLI reads or writes.
func kubeScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, mcsv1beta1.Install, ferryv1.AddToScheme, gwv1.Install} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	return s, nil
}

// kubeConnect builds a client from kubectl's flags, with one-line errors
// that say what to change.
func kubeConnect(kf *genericclioptions.ConfigFlags) (*kubeTarget, error) {
	// controller-runtime's client logs through its own logger; unset, it
	// prints a stack trace to stderr after 30 s (a long --wait). The CLI
	// reports what it needs itself.
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	cc := kf.ToRawKubeConfigLoader()
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w (set --kubeconfig or $KUBECONFIG)", err)
	}
	where := "the kubeconfig"
	if access := cc.ConfigAccess(); access.GetExplicitFile() != "" {
		where = access.GetExplicitFile()
	} else if files := access.GetLoadingPrecedence(); len(files) > 0 {
		where = strings.Join(files, ":")
	}
	ctxName := deref(kf.Context)
	server := deref(kf.APIServer)
	switch {
	case server != "" && ctxName == "" && raw.CurrentContext == "":
		// As with kubectl, --server (with --token or a certificate) needs
		// no kubeconfig at all; messages name the server.
		ctxName = server
	case len(raw.Contexts) == 0:
		return nil, fmt.Errorf("no Kubernetes contexts in %s: set --kubeconfig or $KUBECONFIG (or --server with --token)", where)
	case ctxName == "" && raw.CurrentContext == "":
		return nil, fmt.Errorf("no current context in %s: pass --context (one of %s)", where, contextNames(raw.Contexts))
	case ctxName == "":
		ctxName = raw.CurrentContext
	}
	if _, ok := raw.Contexts[ctxName]; !ok && ctxName != server {
		return nil, fmt.Errorf("context %q is not in %s: use one of %s", ctxName, where, contextNames(raw.Contexts))
	}
	cfg, err := kf.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", ctxName, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("context %q: namespace: %w", ctxName, err)
	}
	scheme, err := kubeScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, (&kubeTarget{Config: cfg, Context: ctxName}).explain("connect", err)
	}
	return &kubeTarget{Client: c, Config: cfg, Context: ctxName, Namespace: ns}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func contextNames[V any](m map[string]V) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "(none)"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// explain turns an API error into one line that names the cluster and says
// what to do. doing is what was attempted, e.g. "list Links".
func (k *kubeTarget) explain(doing string, err error) error {
	host := ""
	if k.Config != nil {
		host = k.Config.Host
	}
	var netErr net.Error
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server of context %q rejected the credentials (401): log in again or check --kubeconfig", doing, k.Context)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: not allowed for your user in context %q: %s", doing, k.Context, apierrors.ReasonForError(err))
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%s: the API is not installed in context %q (is Ferry installed? `ferry install ... | kubectl apply -f -`): %w", doing, k.Context, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return fmt.Errorf("%s: the API server %s of context %q has a certificate we do not trust: %w", doing, host, k.Context, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the API server %s of context %q: %w (is the cluster up? right --context?)", doing, host, k.Context, err)
	}
	return fmt.Errorf("%s in context %q: %w", doing, k.Context, err)
}
