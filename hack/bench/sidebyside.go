package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// sideBySide is what a stage that measures the default tenant beside another tenant found: the
// time n new users of the default tenant take to be Ready, alone and beside the other tenant,
// each condition rounds times, alternately.
type sideBySide struct {
	n, rounds   int
	alone, with []time.Duration
}

// ratio is the best time beside the other tenant over the best time alone.
func (s sideBySide) ratio() float64 {
	return float64(slices.Min(s.with)) / float64(slices.Min(s.alone))
}

// otherTenant starts a simulator (its log in dir) that serves a CipherscaleTenant name in its
// own namespace ns, and creates ns, the namespaces prefix-alone-i and prefix-with-i of each
// round, the tenant's Secret (consenting to it) and the tenant, with settings (its URL is set
// here). The caller stops the simulator.
func otherTenant(ctx context.Context, kube client.Client, simBin, dir, ns, name, prefix string, rounds int, settings iamv1alpha1.TenantSettings) (*devenv.Simulator, *iamv1alpha1.CipherscaleTenant, error) {
	sim, err := devenv.StartSimulator(simBin, filepath.Join(dir, "simulator-"+name+".log"), apiKey)
	if err != nil {
		return nil, nil, err
	}
	namespaces := []string{ns}
	for i := range rounds {
		namespaces = append(namespaces, fmt.Sprintf("%s-alone-%d", prefix, i), fmt.Sprintf("%s-with-%d", prefix, i))
	}
	for _, n := range namespaces {
		if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			sim.Stop(5 * time.Second)
			return nil, nil, err
		}
	}
	secret := "tenant-" + name
	if err := kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret,
		Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: iamv1alpha1.KindCipherscaleTenant + "/" + name}},
		StringData: map[string]string{"api-key": apiKey}}); err != nil {
		sim.Stop(5 * time.Second)
		return nil, nil, err
	}
	settings.URL = sim.URL
	t := &iamv1alpha1.CipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: iamv1alpha1.CipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: secret},
			TenantSettings:  settings,
		},
	}
	if err := kube.Create(ctx, t); err != nil {
		sim.Stop(5 * time.Second)
		return nil, nil, err
	}
	return sim, t, nil
}
