// Command myrmex builds, runs, scans, ships and deploys containers on the real engines underneath (the Docker
// Engine API, BuildKit, OCI registries, Kubernetes), as the Codomyrmex containerization API specifies; see
// package internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/codomyrmex/containerization/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
