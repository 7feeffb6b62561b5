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
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
)

// Global flags, as kubectl names them.
const (
	flagKubeconfig = "kubeconfig"
	flagContext    = "context"
	flagNamespace  = "namespace"
)

// kubeRequestTimeout bounds each API request, so that an unreachable
// cluster gives an error instead of a hang.
const kubeRequestTimeout = 30 * time.Second

// addKubeFlags registers the global connection flags. Commands read them
// back through kubeConnect, so no state is shared between commands.
func addKubeFlags(fs *pflag.FlagSet) {
	fs.String(flagKubeconfig, "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.String(flagContext, "", "kubeconfig context to use (default: the current context)")
	fs.StringP(flagNamespace, "n", "", "namespace (default: the context's namespace)")
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

// kubeConnect builds a client from the global flags, with one-line errors
// that say what to change.
func kubeConnect(cmd *cobra.Command) (*kubeTarget, error) {
	// controller-runtime's client logs through its own logger; unset, it
	// prints a stack trace to stderr after 30 s (a long --wait). The CLI
	// reports what it needs itself.
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	flags := cmd.Flags()
	path, _ := flags.GetString(flagKubeconfig)
	ctxName, _ := flags.GetString(flagContext)
	ns, _ := flags.GetString(flagNamespace)

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: ctxName}
	overrides.Context.Namespace = ns
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w (set --kubeconfig or $KUBECONFIG)", err)
	}
	where := "the kubeconfig"
	if files := rules.GetLoadingPrecedence(); path != "" {
		where = path
	} else if len(files) > 0 {
		where = strings.Join(files, ":")
	}
	if len(raw.Contexts) == 0 {
		return nil, fmt.Errorf("no Kubernetes contexts in %s: set --kubeconfig or $KUBECONFIG", where)
	}
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	if ctxName == "" {
		return nil, fmt.Errorf("no current context in %s: pass --context (one of %s)", where, contextNames(raw.Contexts))
	}
	if _, ok := raw.Contexts[ctxName]; !ok {
		return nil, fmt.Errorf("context %q is not in %s: use one of %s", ctxName, where, contextNames(raw.Contexts))
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", ctxName, err)
	}
	cfg.Timeout = kubeRequestTimeout
	if ns, _, err = cc.Namespace(); err != nil {
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
