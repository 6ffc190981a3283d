// Command demo-controlplane runs a local Kubernetes control plane (kube-apiserver +
// etcd, through controller-runtime's envtest) with the secretsync CRDs installed,
// writes an admin kubeconfig, and stays up until SIGINT/SIGTERM. hack/demo.sh uses it;
// nothing in it listens beyond 127.0.0.1.
//
//	go run ./hack/demo-controlplane -write-kubeconfig /tmp/kubeconfig [-assets bin/k8s] [-crds config/crd/bases]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	kubeconfig := flag.String("write-kubeconfig", "", "write the admin kubeconfig here (required); -kubeconfig is controller-runtime's own flag")
	assets := flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver and etcd")
	crds := flag.String("crds", "config/crd/bases", "directory of CRD manifests to install")
	flag.Parse()
	if *kubeconfig == "" || *assets == "" {
		fmt.Fprintln(os.Stderr, "demo-controlplane: -write-kubeconfig and -assets (or KUBEBUILDER_ASSETS) are required")
		os.Exit(2)
	}
	if err := run(*kubeconfig, *assets, *crds); err != nil {
		fmt.Fprintln(os.Stderr, "demo-controlplane:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, assets, crds string) error {
	// Catch signals before starting, so a Ctrl-C during start-up still stops etcd.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo-controlplane: stop:", err)
		}
	}()
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	fmt.Printf("control plane ready: %s (kubeconfig %s)\n", cfg.Host, kubeconfig)
	<-ctx.Done()
	return nil
}
