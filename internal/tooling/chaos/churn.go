package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// ChurnServices is how many Service names R4's churn works over.
const ChurnServices = 24

// churnSvc is what the churner did to one name.
type churnSvc struct {
	created, exported, ready bool
	port                     int32
}

// churner adds, changes and removes exports in one cluster: the
// exporter's side of a busy cluster. It is used from one goroutine.
type churner struct {
	c     *sandbox.Cluster
	rng   *rand.Rand
	state [ChurnServices]churnSvc
	ops   int
}

func newChurner(c *sandbox.Cluster, seed uint64) *churner {
	return &churner{c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func churnName(i int) string { return fmt.Sprintf("churn-%02d", i) }

// step makes one random change: export a new Service, change an exported
// one's port or readiness, unexport it, or export it again.
func (ch *churner) step(ctx context.Context) error {
	i := ch.rng.IntN(ChurnServices)
	s, name := &ch.state[i], churnName(i)
	ch.ops++
	switch {
	case !s.created:
		s.port, s.ready = 80, true
		// An earlier scenario's churner may have made it already.
		if _, err := ch.c.API.CreateBackend(ctx, testenv.Backend{Namespace: Namespace, Name: name, Port: s.port,
			Endpoints: []testenv.Endpoint{{IP: ch.c.Site.PodAddr(250), Port: 8080, Ready: true}}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		s.created = true
		return ch.export(ctx, name, s)
	case !s.exported:
		return ch.export(ctx, name, s)
	}
	switch ch.rng.IntN(4) {
	case 0: // a new port number
		var svc corev1.Service
		if err := ch.c.API.Client.Get(ctx, keyOf(name), &svc); err != nil {
			return fmt.Errorf("churn: %w", err)
		}
		s.port = 80 + int32(ch.rng.IntN(20))
		svc.Spec.Ports[0].Port = s.port
		if err := ch.c.API.Client.Update(ctx, &svc); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("churn: %w", err)
		}
		return nil
	case 1, 2: // readiness flips
		s.ready = !s.ready
		return ch.c.API.SetEndpoints(ctx, Namespace, name, []testenv.Endpoint{{IP: ch.c.Site.PodAddr(250), Port: 8080, Ready: s.ready}})
	default: // unexport
		se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
		if err := ch.c.API.Client.Delete(ctx, se); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("churn: %w", err)
		}
		s.exported = false
		return nil
	}
}

func (ch *churner) export(ctx context.Context, name string, s *churnSvc) error {
	if err := ch.c.Export(ctx, Namespace, name); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("churn: %w", err)
	}
	s.exported = true
	return nil
}
