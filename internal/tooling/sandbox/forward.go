package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ForwardAPIServers makes every cluster's API server reachable from this
// process's own network at 127.0.0.1, as an operator's workstation reaches
// its clusters, and writes a kubeconfig with one admin context per cluster
// for those addresses. Tools such as the ferry CLI and kubectl use it; the
// clusters themselves still cannot reach each other's API servers.
func (sb *Sandbox) ForwardAPIServers(ctx context.Context) (string, error) {
	cfg := clientcmdapi.NewConfig()
	for _, c := range sb.Clusters {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("sandbox: forward %s: %w", c.Name, err)
		}
		go forward(ctx, ln, c)
		rc := c.API.RestConfig
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: "https://" + ln.Addr().String(), CertificateAuthorityData: rc.CAData}
		cfg.AuthInfos[c.Name+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name + "-admin"}
		if cfg.CurrentContext == "" {
			cfg.CurrentContext = c.Name
		}
	}
	path := filepath.Join(sb.Dir(), "kubeconfig-local")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("sandbox: kubeconfig: %w", err)
	}
	return path, nil
}

func forward(ctx context.Context, ln net.Listener, c *Cluster) {
	go func() { <-ctx.Done(); ln.Close() }()
	target := c.API.Server[len("https://"):]
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := c.Site.NS.DialContext(ctx, "tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); _ = out.(*net.TCPConn).CloseWrite() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); _ = in.(*net.TCPConn).CloseWrite() }()
			wg.Wait()
		}()
	}
}
