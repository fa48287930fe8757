// Command kubectl-cipherscale is a kubectl plugin (kubectl cipherscale export | plan | status)
// that brings an existing Cipherscale tenant under the operator and shows its state: a thin main
// over internal/onboarding.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cipherscale/cipherscale-operator/internal/onboarding"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := onboarding.Main(ctx, os.Args[1:], onboarding.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
