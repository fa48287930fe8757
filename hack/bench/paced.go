package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// paced is what the one-file-at-a-time stage measured: n new users, each in its own file, applied
// by one kubectl process per file, one after another, as `for f in people/*; do kubectl apply
// -f $f; done` or a sync wave does.
type paced struct {
	n        int
	applied  time.Duration // from the first kubectl to the last one's exit
	lastLag  time.Duration // from the last kubectl's exit to all Ready
	creates  int           // create calls (POST /tenants/users) during the stage
	calls    int           // every call during the stage
	firstLag []time.Duration
}

// pacedStage writes n CipherscaleUsers of the default tenant (each a new user with one group,
// id.group) to files and applies them one kubectl process at a time, in namespace
// bench-paced; it counts the create calls the simulator answered.
func pacedStage(ctx context.Context, kube client.Client, tr *tracker, control *devenv.SimControl, root, kubeconfig, dir string, id ids, n int) (paced, error) {
	out := paced{n: n}
	ns := "bench-paced"
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return out, err
	}
	files := filepath.Join(dir, "paced")
	if err := os.MkdirAll(files, 0o755); err != nil {
		return out, err
	}
	var objs []client.Object
	var paths []string
	for i := range n {
		name := fmt.Sprintf("paced-%04d", i)
		path := filepath.Join(files, name+".yaml")
		yaml := fmt.Sprintf("apiVersion: iam.cipherscale.com/v1alpha1\nkind: CipherscaleUser\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  email: %s@%s\n  groups: [%q]\n",
			name, ns, name, emailDomain, id.group)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			return out, err
		}
		paths = append(paths, path)
		u := &iamv1alpha1.CipherscaleUser{}
		u.Namespace, u.Name = ns, name
		objs = append(objs, u)
	}
	before, err := control.Stats(ctx)
	if err != nil {
		return out, err
	}
	readyBefore, _ := tr.state()
	start := time.Now()
	for _, p := range paths {
		if o, err := devenv.Kubectl(ctx, root, kubeconfig, "apply", "-f", p); err != nil {
			return out, fmt.Errorf("%w: %s", err, o)
		}
	}
	out.applied = time.Since(start)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	at, err := tr.waitCount(wctx, readyBefore+n, nil)
	if err != nil {
		return out, fmt.Errorf("the paced users were not all Ready: %w", err)
	}
	out.lastLag = at.Sub(start.Add(out.applied))
	for _, o := range objs[:min(5, len(objs))] {
		if a, ok := tr.readyAt(o); ok {
			out.firstLag = append(out.firstLag, a.Sub(start))
		}
	}
	after, err := control.Stats(ctx)
	if err != nil {
		return out, err
	}
	d := diff(after, before)
	out.creates, out.calls = d.Count(cipherscale.RouteCreateUsers), d.Total
	slices.Sort(out.firstLag)
	return out, nil
}
