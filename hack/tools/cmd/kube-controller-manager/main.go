// Command kube-controller-manager is the upstream Kubernetes controller
// manager, built from Go modules. The sandbox runs a few of its controllers
// (namespace, serviceaccount, deployment, replicaset, statefulset,
// endpointslice) so that what a conformance suite creates behaves as it would
// in a real cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
