// Command kubectl-cipherscale is a kubectl plugin (kubectl cipherscale export | plan | status)
// that brings an existing Cipherscale tenant under the operator and shows its state: a thin main
// over internal/onboarding.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cipherscale/cipherscale-operator/internal/onboarding"
)

func main() {
	// Its clients log nothing of their own: what it has to say, it prints. (Without a logger,
	// controller-runtime prints a warning with a stack trace after 30 seconds.)
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := onboarding.Main(ctx, os.Args[1:], onboarding.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
