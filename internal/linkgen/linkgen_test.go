package linkgen

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
)

func gw(typ corev1.ServiceType, annotations map[string]string, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: contract.GatewayName, Annotations: annotations},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Name: contract.IngressPortName, Port: 4143}}},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
}

func TestFromService(t *testing.T) {
	eastID := contract.GatewayID("corp.example", "east").String()
	published := map[string]string{contract.AnnotationGatewayIdentity: eastID}
	cases := []struct {
		name      string
		svc       *corev1.Service
		opts      Options
		wantAddrs []string
		wantID    string
		wantErr   string
	}{
		{
			name: "load balancer address and published identity",
			svc: gw(corev1.ServiceTypeLoadBalancer, published,
				corev1.LoadBalancerIngress{IP: "198.19.0.12"}, corev1.LoadBalancerIngress{Hostname: "gw.east.example"}),
			opts:      Options{ClusterName: "east"},
			wantAddrs: []string{"198.19.0.12:4143", "gw.east.example:4143"},
			wantID:    eastID,
		},
		{
			name:      "no published identity: computed from mesh domain",
			svc:       gw(corev1.ServiceTypeLoadBalancer, nil, corev1.LoadBalancerIngress{IP: "198.19.0.12"}),
			opts:      Options{ClusterName: "east"},
			wantAddrs: []string{"198.19.0.12:4143"},
			wantID:    "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
		},
		{
			name:      "override addresses, bare host gets the ingress port",
			svc:       gw(corev1.ServiceTypeNodePort, published),
			opts:      Options{ClusterName: "east", GatewayAddresses: []string{"198.19.0.12", "198.19.0.13:30443"}},
			wantAddrs: []string{"198.19.0.12:4143", "198.19.0.13:30443"},
			wantID:    eastID,
		},
		{
			name:    "wrong context: the gateway belongs to another cluster",
			svc:     gw(corev1.ServiceTypeLoadBalancer, published, corev1.LoadBalancerIngress{IP: "198.19.0.12"}),
			opts:    Options{ClusterName: "west"},
			wantErr: `belongs to cluster "east", not "west": check --context`,
		},
		{
			name:    "a controller identity is not a gateway",
			svc:     gw(corev1.ServiceTypeLoadBalancer, map[string]string{contract.AnnotationGatewayIdentity: contract.ControllerID("corp.example", "east").String()}, corev1.LoadBalancerIngress{IP: "198.19.0.12"}),
			opts:    Options{ClusterName: "east"},
			wantErr: "is not a gateway",
		},
		{
			name:    "ClusterIP needs an explicit address",
			svc:     gw(corev1.ServiceTypeClusterIP, published),
			opts:    Options{ClusterName: "east"},
			wantErr: "pass --gateway-address",
		},
		{
			name:    "load balancer not provisioned yet",
			svc:     gw(corev1.ServiceTypeLoadBalancer, published),
			opts:    Options{ClusterName: "east"},
			wantErr: "no load-balancer address yet",
		},
		{
			name:    "bad cluster name",
			svc:     gw(corev1.ServiceTypeLoadBalancer, published),
			opts:    Options{ClusterName: "East"},
			wantErr: "--cluster-name",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := FromService(tc.svc, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Spec.GatewayAddresses, tc.wantAddrs) || l.Spec.GatewayIdentity != tc.wantID {
				t.Fatalf("got %v %s, want %v %s", l.Spec.GatewayAddresses, l.Spec.GatewayIdentity, tc.wantAddrs, tc.wantID)
			}
			if l.Name != tc.opts.ClusterName || l.Namespace != contract.SystemNamespace || l.Kind != "Link" {
				t.Fatalf("link metadata %s/%s kind %q", l.Namespace, l.Name, l.Kind)
			}
		})
	}
}
