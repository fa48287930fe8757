// Command cipherscale-sim serves a simulated Cipherscale tenant (the Users API and the /_sim/
// control surface) until it is interrupted:
//
//	go run ./hack/cipherscale-sim --listen 127.0.0.1:8089 --api-key KEY [--demo-seed] [--seed FILE]
//
// The API key may come from CIPHERSCALE_API_KEY instead; it is never printed. The command prints
// one line "cipherscale-sim listening on http://ADDR" to stdout; what it seeded goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cipherscale-sim:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cipherscale-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8089", "address to listen on (port 0 picks a free port)")
	apiKey := fs.String("api-key", "", "API key the simulator accepts (default from $CIPHERSCALE_API_KEY)")
	seedFile := fs.String("seed", "", `JSON file {"roles": [...], "groups": [...], "users": [...]} to preload`)
	demoSeed := fs.Bool("demo-seed", false, "preload fixed demo roles, groups and an owner user")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("CIPHERSCALE_API_KEY")
	}
	if key == "" {
		return errors.New("an API key is required: --api-key or CIPHERSCALE_API_KEY")
	}

	sim := simulator.New(key)
	if *demoSeed {
		seeded, err := sim.ApplySeed(simulator.DemoSeed())
		if err != nil {
			return fmt.Errorf("demo seed: %w", err)
		}
		report(stderr, "demo seed", seeded)
	}
	if *seedFile != "" {
		seed, err := readSeed(*seedFile)
		if err != nil {
			return err
		}
		seeded, err := sim.ApplySeed(seed)
		if err != nil {
			return fmt.Errorf("seed %s: %w", *seedFile, err)
		}
		report(stderr, "seed "+*seedFile, seeded)
	}

	url, stop, err := sim.Start(*listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cipherscale-sim listening on %s\n", url)
	<-ctx.Done()
	stop()
	return nil
}

func readSeed(path string) (simulator.Seed, error) {
	var seed simulator.Seed
	b, err := os.ReadFile(path)
	if err != nil {
		return seed, err
	}
	if err := json.Unmarshal(b, &seed); err != nil {
		return seed, fmt.Errorf("seed %s: %w", path, err)
	}
	return seed, nil
}

func report(w io.Writer, what string, s simulator.Seeded) {
	for _, r := range s.Roles {
		fmt.Fprintf(w, "%s: role %s (%s) id=%s\n", what, r.Name, r.Type, r.ID)
	}
	for _, g := range s.Groups {
		fmt.Fprintf(w, "%s: group %s id=%s\n", what, g.Name, g.ID)
	}
	for _, u := range s.Users {
		fmt.Fprintf(w, "%s: user %s (%s, owner=%t) id=%s\n", what, u.Email, u.Status, u.IsOwner, u.ID)
	}
}
