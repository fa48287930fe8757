package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// stageEnv is a control plane and a manager of their own, for a stage that runs apart from the
// mixed workload (the fleet, the large tenant): its memory and CPU are the stage's alone.
type stageEnv struct {
	cp      *devenv.ControlPlane
	mgr     *devenv.Process
	port    int
	tr      *tracker
	args    []string // the manager's flags that change a setting
	cleanup devenv.Group
	ctx     context.Context
}

// startStage starts kube-apiserver and etcd, the manager (its log in dir/manager-name.log) with
// p's -manager-args and -manager-env, and a tracker. The returned context ends when the manager
// exits; stop ends everything.
func startStage(ctx context.Context, root, dir, name string, p params) (*stageEnv, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(ctx)
	e := &stageEnv{ctx: ctx}
	stop := func() {
		cancel()
		e.cleanup.Run()
	}
	fmt.Printf("==> %s: starting kube-apiserver and etcd\n", name)
	cp, err := devenv.StartControlPlane(root, filepath.Join(dir, "kubeconfig-"+name))
	if err != nil {
		return nil, stop, err
	}
	e.cp = cp
	e.cleanup.Defer(func() { _ = cp.Stop() })
	port, err := devenv.FreePort()
	if err != nil {
		return nil, stop, err
	}
	env := []string{"KUBECONFIG=" + cp.Kubeconfig}
	if p.managerEnv != "" {
		env = append(env, strings.Split(p.managerEnv, ",")...)
	}
	e.args = splitArgs(p.managerArgs)
	args := append(append([]string{}, e.args...), devenv.ManagerURLArgs...)
	args = append(args, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address", "0")
	if p.pprof != "" {
		args = append(args, "--pprof-bind-address", p.pprof)
	}
	fmt.Printf("==> %s: starting the manager %s\n", name, strings.Join(e.args, " "))
	proc, err := devenv.Start("manager", filepath.Join(dir, "manager-"+name+".log"), env, p.managerBin, args...)
	if err != nil {
		return nil, stop, err
	}
	e.mgr, e.port = proc, port
	e.cleanup.Defer(func() { proc.Stop(30 * time.Second) })
	go func() {
		select {
		case <-proc.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if e.tr, err = startTracker(ctx, cp.Config); err != nil {
		return nil, stop, err
	}
	return e, stop, nil
}

// splitArgs splits -manager-args: flags separated by commas or spaces.
func splitArgs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// sumStats adds the statistics of several simulators.
func sumStats(sims []*simulator.Server) simulator.Stats {
	by := map[string]*simulator.RouteStat{}
	var keys []string
	var out simulator.Stats
	for _, s := range sims {
		for _, r := range s.Stats().Requests {
			k := fmt.Sprintf("%s|%d", r.Route, r.Status)
			if by[k] == nil {
				by[k] = &simulator.RouteStat{Route: r.Route, Status: r.Status}
				keys = append(keys, k)
			}
			by[k].Count += r.Count
			out.Total += r.Count
		}
	}
	for _, k := range keys {
		out.Requests = append(out.Requests, *by[k])
	}
	return out
}

// startSim starts an in-process simulator with the bench's API key, latency and limit.
func startSim(latency time.Duration, limit float64) (*simulator.Server, string, func(), error) {
	s := simulator.New(apiKey)
	url, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	if latency > 0 {
		s.SetFaults([]simulator.FaultRule{{LatencyMs: int(latency / time.Millisecond)}})
	}
	if limit > 0 {
		s.SetLimit(limit, int(max(1, limit)))
	}
	return s, url, stop, nil
}

// readyCondition returns the Ready condition of a tenant object.
func tenantReady(ctx context.Context, kube client.Client, t client.Object) (bool, error) {
	if err := kube.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
		return false, err
	}
	var conds []metav1.Condition
	switch x := t.(type) {
	case *iamv1alpha1.CipherscaleTenant:
		conds = x.Status.Conditions
	case *iamv1alpha1.ClusterCipherscaleTenant:
		conds = x.Status.Conditions
	}
	c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue, nil
}

// waitReady waits until n objects are Ready on the tracker, printing progress, and returns when.
func waitReady(ctx context.Context, tr *tracker, n int, start time.Time, limit time.Duration) (time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	last := -1
	at, err := tr.waitCount(wctx, n, func(c int) {
		if step := max(1, n/10); c/step != last/step {
			fmt.Printf("    %d/%d Ready after %s\n", c, n, time.Since(start).Round(time.Second))
			last = c
		}
	})
	if err != nil {
		c, _ := tr.state()
		return at, fmt.Errorf("%d of %d objects Ready when waiting stopped: %w", c, n, err)
	}
	return at, nil
}

// svgBeside returns the SVG's path beside a report's and its name, for the report's link.
func svgBeside(report string) (string, string) {
	p := strings.TrimSuffix(report, filepath.Ext(report)) + ".svg"
	return p, filepath.Base(p)
}
