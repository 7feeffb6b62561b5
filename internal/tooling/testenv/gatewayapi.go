package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// GatewayAPIModule is the module whose route CRDs GatewayAPICRDs reads: the
// version in go.mod, the one Ferry's code is built against.
const GatewayAPIModule = "sigs.k8s.io/gateway-api"

var gatewayAPI struct {
	once sync.Once
	docs [][]byte
	err  error
}

// GatewayAPICRDs returns the standard channel's TCPRoute and HTTPRoute
// CRDs from the module cache. The module ships them as YAML only (no
// embedding package), so they are read from where `go list -m` finds the
// module; a cluster with them is one whose platform team installed the
// Gateway API, as Ferry's docs ask. It panics when they cannot be read:
// a test environment that cannot be built has nothing to test.
func GatewayAPICRDs() [][]byte {
	gatewayAPI.once.Do(func() { gatewayAPI.docs, gatewayAPI.err = readGatewayAPICRDs() })
	if gatewayAPI.err != nil {
		panic(gatewayAPI.err)
	}
	return gatewayAPI.docs
}

func readGatewayAPICRDs() ([][]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", GatewayAPIModule)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	switch {
	case err != nil:
		return nil, fmt.Errorf("testenv: find module %s (run `go mod download %s`): %w %s", GatewayAPIModule, GatewayAPIModule, err, stderr.String())
	case dir == "":
		return nil, fmt.Errorf("testenv: module %s is not in the module cache: run `go mod download %s`", GatewayAPIModule, GatewayAPIModule)
	}
	var docs [][]byte
	for _, kind := range []string{"tcproutes", "httproutes"} {
		b, err := os.ReadFile(filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+kind+".yaml"))
		if err != nil {
			return nil, fmt.Errorf("testenv: Gateway API CRD: %w", err)
		}
		docs = append(docs, b)
	}
	return docs, nil
}
