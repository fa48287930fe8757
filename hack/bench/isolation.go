package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// isolation is what the tenant isolation stage measured: the time n new users of the default
// tenant take to be Ready, alone and while a second tenant answers 429 to everything, each
// condition measured rounds times, alternately.
type isolation struct {
	sideBySide
	throttled int // 429 answers of the second tenant during the stage
}

// isolationStage runs on the manager of the steady state, after it: a second simulator serves a
// CipherscaleTenant "b" in its own namespace, Ready, then answering 429 to everything. Each
// round applies n users of the default tenant (each with a profile, the Bench role and group)
// alone, then creates n objects on tenant b, waits until b and every one of them report the
// storm (b not Ready, its objects Reconciling/APIUnavailable: busy, not broken) and two quiet seconds, applies n more users of
// the default tenant, and deletes b's objects again.
func isolationStage(ctx context.Context, kube client.Client, tr *tracker, id ids, simBin, dir string, n, rounds int) (isolation, error) {
	out := isolation{sideBySide: sideBySide{n: n, rounds: rounds}}
	// Tenant b gets the default tenant's rate, as it got the manager's when that was a flag.
	def := &iamv1alpha1.ClusterCipherscaleTenant{}
	if err := kube.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
		return out, err
	}
	nsB := "bench-tenant-b"
	simB, tb, err := otherTenant(ctx, kube, simBin, dir, nsB, "b", "bench-isolation", rounds,
		iamv1alpha1.TenantSettings{RequestsPerSecond: def.Spec.RequestsPerSecond, Burst: def.Spec.Burst})
	if err != nil {
		return out, err
	}
	defer simB.Stop(5 * time.Second)
	controlB := devenv.NewSimControl(simB.URL)
	tenantReady := func() (*metav1.Condition, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(tb), tb); err != nil {
			return nil, err
		}
		return meta.FindStatusCondition(tb.Status.Conditions, iamv1alpha1.ConditionReady), nil
	}
	if err := poll(ctx, time.Minute, func() (bool, error) {
		c, err := tenantReady()
		return c != nil && c.Status == metav1.ConditionTrue, err
	}); err != nil {
		return out, fmt.Errorf("tenant b not Ready: %w", err)
	}
	if err := controlB.SetFaults(ctx, []simulator.FaultRule{{Status: http.StatusTooManyRequests, RetryAfterSeconds: 1}}); err != nil {
		return out, err
	}

	batch := func(ns string) (time.Duration, error) { return applyBatch(ctx, kube, tr, id, ns, n) }
	bObjects := func() []client.Object {
		objs := make([]client.Object, n)
		for i := range objs {
			objs[i] = &iamv1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: fmt.Sprintf("b-%03d", i)},
				Spec: iamv1alpha1.CipherscaleUserSpec{
					Email:     fmt.Sprintf("b-%03d@%s", i, emailDomain),
					TenantRef: &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "b"},
				},
			}
		}
		return objs
	}
	// bThrottled: b is not Ready and every one of its n objects says APIUnavailable (a busy
	// tenant's objects keep calling their API; they are not refused).
	bThrottled := func() (bool, error) {
		c, err := tenantReady()
		if err != nil || c == nil || c.Status != metav1.ConditionFalse {
			return false, err
		}
		var list iamv1alpha1.CipherscaleUserList
		if err := kube.List(ctx, &list, client.InNamespace(nsB)); err != nil {
			return false, err
		}
		count := 0
		for _, u := range list.Items {
			if c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady); c != nil &&
				c.Status == metav1.ConditionFalse && c.Reason == iamv1alpha1.ReasonAPIUnavailable {
				count++
			}
		}
		return count == n, nil
	}
	bEmpty := func() (bool, error) {
		var list iamv1alpha1.CipherscaleUserList
		err := kube.List(ctx, &list, client.InNamespace(nsB))
		return len(list.Items) == 0, err
	}
	// quiet waits until cond holds for two seconds in a row.
	quiet := func(cond func() (bool, error)) error {
		deadline := time.Now().Add(time.Minute)
		for {
			if err := poll(ctx, time.Until(deadline), cond); err != nil {
				return err
			}
			err := steady(ctx, 2*time.Second, cond)
			if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
				return err
			}
		}
	}

	for i := range rounds {
		fmt.Printf("    round %d of %d: %d users of the default tenant alone\n", i+1, rounds, n)
		d, err := batch(fmt.Sprintf("bench-isolation-alone-%d", i))
		if err != nil {
			return out, err
		}
		out.alone = append(out.alone, d)
		fmt.Printf("    round %d of %d: %d objects on tenant b, answering 429\n", i+1, rounds, n)
		objsB := bObjects()
		if err := parallel(8, n, func(k int) error { return kube.Create(ctx, objsB[k]) }); err != nil {
			return out, err
		}
		if err := quiet(bThrottled); err != nil {
			return out, fmt.Errorf("tenant b's objects did not settle as throttled: %w", err)
		}
		fmt.Printf("    round %d of %d: %d users of the default tenant beside throttled b\n", i+1, rounds, n)
		if d, err = batch(fmt.Sprintf("bench-isolation-with-%d", i)); err != nil {
			return out, err
		}
		out.with = append(out.with, d)
		if err := kube.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(nsB)); err != nil {
			return out, err
		}
		if err := quiet(bEmpty); err != nil {
			return out, fmt.Errorf("tenant b's objects not deleted: %w", err)
		}
	}
	st, err := controlB.Stats(ctx)
	if err != nil {
		return out, err
	}
	out.throttled = countStatus(st, http.StatusTooManyRequests)
	return out, nil
}

// poll checks cond every 100ms until it holds or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// steady checks that cond keeps holding for d.
func steady(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ok, err := cond()
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("changed while waiting for it to stay")
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// applyBatch applies n users of the default tenant in ns (each with a profile, the Bench role
// and group) and returns the time from the first create to the last Ready seen on a watch.
func applyBatch(ctx context.Context, kube client.Client, tr *tracker, id ids, ns string, n int) (time.Duration, error) {
	objs := make([]client.Object, n)
	for i := range objs {
		objs[i] = &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("iso-%03d", i)},
			Spec: iamv1alpha1.CipherscaleUserSpec{
				Email:     fmt.Sprintf("%s-%03d@%s", ns, i, emailDomain),
				FirstName: ptr("Isolation"), LastName: ptr(strconv.Itoa(i)),
				Roles: &[]iamv1alpha1.ID{id.role}, Groups: &[]iamv1alpha1.ID{id.group},
			},
		}
	}
	return createAndWait(ctx, kube, tr, objs, 5*time.Minute)
}

// createAndWait creates objs (8 at a time) and returns the time from the first create to the
// last Ready seen on a watch, waiting at most timeout.
func createAndWait(ctx context.Context, kube client.Client, tr *tracker, objs []client.Object, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := parallel(8, len(objs), func(i int) error { return kube.Create(ctx, objs[i]) }); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last time.Time
	for _, o := range objs {
		at, err := tr.waitFor(wctx, o)
		if err != nil {
			return 0, fmt.Errorf("%s/%s not Ready: %w", o.GetNamespace(), o.GetName(), err)
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(start), nil
}
