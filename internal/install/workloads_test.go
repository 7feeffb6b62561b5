package install

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
)

func deployments(objs []client.Object) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			out = append(out, d)
		}
	}
	return out
}

// TestDaemonFlagsExist checks every flag the manifests pass against the
// flags the daemons' mains define, so a renamed flag fails here and not in
// a CrashLoopBackOff.
func TestDaemonFlagsExist(t *testing.T) {
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	mains := map[string]string{contract.ControllerName: "../../cmd/ferry-controller/main.go", contract.GatewayName: "../../cmd/ferry-gateway/main.go"}
	for _, d := range deployments(objs) {
		src, err := os.ReadFile(mains[d.Name])
		if err != nil {
			t.Fatal(err)
		}
		for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			if !strings.Contains(string(src), `"`+name+`"`) {
				t.Errorf("%s passes %s, but %s defines no flag %q", d.Name, arg, mains[d.Name], name)
			}
		}
	}
}
