// Command demo shows Ferry on local clusters: `make demo`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("==> starting two independent local clusters (etcd + kube-apiserver each)")
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters: []string{"east", "west"},
		CRDs:     testenv.MCSCRDs(),
		Logf:     func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("==> stopping the clusters")
		env.Stop()
	}()
	fmt.Printf("    both ready in %s\n", env.StartupTime.Round(time.Millisecond))
	for _, c := range env.Clusters {
		v, err := c.Kube.Discovery().ServerVersion()
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		ns, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		fmt.Printf("==> cluster %-5s %s  Kubernetes %s, %d namespaces\n", c.Name, c.Server, v.GitVersion, len(ns.Items))
	}
	return nil
}
