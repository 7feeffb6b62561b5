// Command kubectl is the upstream kubectl, built from Go modules at the
// Kubernetes version of the API servers, so that tests can run Ferry as a
// kubectl plugin (`kubectl ferry ...`) the way users do.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
