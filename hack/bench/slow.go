package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// Settings of the slow-tenant stage: issue 22's shape.
const (
	slowRate    = 1    // the slow tenant's requestsPerSecond (burst 1)
	slowLatency = 2000 // ms the slow tenant's API takes to answer
	slowObjects = 40   // its objects, each given a new first name (a profile write) per round
)

// slowTenant is what the slow-tenant stage measured: the time n new users of the default
// tenant take to be Ready, alone and while a CipherscaleTenant at 1 request/s whose API answers
// in 2 s has 40 objects needing a profile write, each condition rounds times, alternately.
type slowTenant struct {
	sideBySide
	// writes are the slow tenant's profile writes answered while the default tenant was measured.
	writes []int
}

// slowStage runs on the restarted manager: a third simulator serves CipherscaleTenant "slow"
// in its own namespace, with 40 users Ready. Each round applies n users of the default tenant
// alone; then gives the 40 objects a new first name, waits until the slow tenant answered one
// of the profile writes, applies n more users of the default tenant, and waits until the 40
// objects are Ready again.
func slowStage(ctx context.Context, kube client.Client, tr *tracker, id ids, simBin, dir string, n, rounds int) (slowTenant, error) {
	out := slowTenant{sideBySide: sideBySide{n: n, rounds: rounds}}
	ns := "bench-tenant-slow"
	rate, burst := int32(slowRate), int32(1)
	simS, _, err := otherTenant(ctx, kube, simBin, dir, ns, "slow", "bench-slow", rounds, iamv1alpha1.TenantSettings{
		RequestsPerSecond: &rate, Burst: &burst, ResyncInterval: &metav1.Duration{Duration: 10 * time.Minute}})
	if err != nil {
		return out, err
	}
	defer simS.Stop(5 * time.Second)
	control := devenv.NewSimControl(simS.URL)
	objs := make([]*iamv1alpha1.CipherscaleUser, slowObjects)
	for i := range objs {
		objs[i] = &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("slow-%03d", i)},
			Spec: iamv1alpha1.CipherscaleUserSpec{
				Email: fmt.Sprintf("slow-%03d@%s", i, emailDomain), FirstName: ptr("Slow"),
				TenantRef: &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "slow"},
			},
		}
		if err := kube.Create(ctx, objs[i]); err != nil {
			return out, err
		}
	}
	// allReady: every object of the slow tenant Ready at its current generation.
	allReady := func() (bool, error) {
		var list iamv1alpha1.CipherscaleUserList
		if err := kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		ready := 0
		for _, u := range list.Items {
			if c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady); c != nil &&
				c.Status == metav1.ConditionTrue && c.ObservedGeneration == u.Generation {
				ready++
			}
		}
		return ready == slowObjects, nil
	}
	if err := poll(ctx, 3*time.Minute, allReady); err != nil {
		return out, fmt.Errorf("the slow tenant's objects not Ready: %w", err)
	}
	writes := func() (int, error) {
		st, err := control.Stats(ctx)
		return st.Count(cipherscale.RouteUpdateProfile), err
	}
	for i := range rounds {
		fmt.Printf("    round %d of %d: %d users of the default tenant alone\n", i+1, rounds, n)
		d, err := applyBatch(ctx, kube, tr, id, fmt.Sprintf("bench-slow-alone-%d", i), n)
		if err != nil {
			return out, err
		}
		out.alone = append(out.alone, d)

		fmt.Printf("    round %d of %d: %d objects of the slow tenant given a new first name\n", i+1, rounds, slowObjects)
		if err := control.SetFaults(ctx, []simulator.FaultRule{{LatencyMs: slowLatency}}); err != nil {
			return out, err
		}
		w0, err := writes()
		if err != nil {
			return out, err
		}
		for k, o := range objs {
			if err := kube.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return out, err
			}
			o.Spec.FirstName = ptr(fmt.Sprintf("Slow%d-%d", i, k))
			if err := kube.Update(ctx, o); err != nil {
				return out, err
			}
		}
		if err := poll(ctx, time.Minute, func() (bool, error) { w, err := writes(); return w > w0, err }); err != nil {
			return out, fmt.Errorf("the slow tenant answered no profile write: %w", err)
		}
		w1, _ := writes()
		fmt.Printf("    round %d of %d: %d users of the default tenant beside the slow tenant at work\n", i+1, rounds, n)
		if d, err = applyBatch(ctx, kube, tr, id, fmt.Sprintf("bench-slow-with-%d", i), n); err != nil {
			return out, err
		}
		out.with = append(out.with, d)
		w2, err := writes()
		if err != nil {
			return out, err
		}
		out.writes = append(out.writes, w2-w1)
		if err := control.SetFaults(ctx, []simulator.FaultRule{}); err != nil {
			return out, err
		}
		if err := poll(ctx, 5*time.Minute, allReady); err != nil {
			return out, fmt.Errorf("the slow tenant's objects not Ready again: %w", err)
		}
	}
	return out, nil
}
