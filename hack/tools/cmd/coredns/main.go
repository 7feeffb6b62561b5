// Command coredns is upstream CoreDNS, built from Go modules for Ferry's
// local clusters with the plugins a cluster DNS uses. Its kubernetes plugin
// serves the MCS DNS specification (clusterset.local) from ServiceImports
// and EndpointSlices: Ferry writes those objects, and CoreDNS answers.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
