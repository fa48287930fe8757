package chart_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// allowedWarning is a kube-score WARNING the chart keeps on purpose, with the reason.
type allowedWarning struct {
	kind, message, reason string
}

// allowedWarnings lists every kube-score WARNING the default render may carry. A WARNING not
// listed here fails the test: fix the chart, or add it here with the reason it stays.
var allowedWarnings = []allowedWarning{
	{
		kind:    "apps/v1/Deployment",
		message: "Deployment few replicas",
		reason: "One replica by default: with leader election only one replica acts at a time, and a " +
			"restarted manager catches up from the objects' status and the tenant within seconds, " +
			"so a standby only shortens a failover. replicas: 2 (or more) adds one, with a " +
			"PodDisruptionBudget and a preferred pod anti-affinity that the chart then renders.",
	},
}

// A kube-score finding, from one line of `--output-format ci`: "[LEVEL] name/namespace kind: message".
type finding struct {
	level, object, kind, message string
}

func parseFindings(out string) []finding {
	var fs []finding
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "[") {
			continue
		}
		level, rest, ok := strings.Cut(strings.TrimPrefix(line, "["), "] ")
		if !ok {
			continue
		}
		head, message, _ := strings.Cut(rest, ": ")
		object, kind, _ := strings.Cut(head, " ")
		fs = append(fs, finding{level: level, object: object, kind: kind, message: message})
	}
	return fs
}

// configIgnoredTests are the kube-score tests skipped for config/: none. Its image is the one
// `make image` builds, with a fixed tag (the chart's appVersion) and pull policy Always, as the
// chart's.
var configIgnoredTests []string

// configWarnings are the WARNINGs config/default keeps, with the reason.
var configWarnings = []allowedWarning{allowedWarnings[0]}

// expectScore runs kube-score on manifests and fails on any CRITICAL or any WARNING that is not
// allowed, returning nothing when the score is clean.
func expectScore(manifests string, allowed []allowedWarning, ignoredTests ...string) {
	GinkgoHelper()
	_, err := os.Stat(kubeScoreBin)
	Expect(err).NotTo(HaveOccurred(), "no kube-score at %s: run `make kube-score`", kubeScoreBin)
	args := []string{"score", "--output-format", "ci"}
	for _, t := range ignoredTests {
		args = append(args, "--ignore-test", t)
	}
	cmd := exec.CommandContext(ctx, kubeScoreBin, append(args, "-")...)
	cmd.Stdin = strings.NewReader(manifests)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// kube-score exits 1 when it finds something CRITICAL: the findings say what.
	runErr := cmd.Run()
	Expect(stderr.String()).To(BeEmpty())
	fs := parseFindings(stdout.String())
	Expect(fs).NotTo(BeEmpty(), "kube-score said nothing: %s", stdout.String())

	var okCount int
	for _, f := range fs {
		switch f.level {
		case "OK", "SKIPPED":
			okCount++
		case "CRITICAL":
			Fail("kube-score CRITICAL: " + f.object + " " + f.kind + ": " + f.message)
		case "WARNING":
			ok := false
			for _, a := range allowed {
				if a.kind == f.kind && strings.Contains(f.message, a.message) {
					ok = true
					GinkgoWriter.Printf("allowed kube-score WARNING %s %s: %s (%s)\n", f.kind, f.object, f.message, a.reason)
				}
			}
			Expect(ok).To(BeTrue(), "unexpected kube-score WARNING: %s %s: %s", f.object, f.kind, f.message)
		default:
			Fail("unknown kube-score level in: " + f.level + " " + f.object + " " + f.message)
		}
	}
	Expect(okCount).To(BeNumerically(">", 10))
	Expect(runErr).NotTo(HaveOccurred(), "no CRITICAL finding, so kube-score exits 0")
}

var _ = Describe("kube-score", func() {
	It("finds nothing CRITICAL in the default render, and only the allowed WARNINGs", func() {
		manifests, err := template(release, releaseNS, defaultValues())
		Expect(err).NotTo(HaveOccurred())
		expectScore(manifests, allowedWarnings)
	})

	It("finds nothing CRITICAL in config/default's workload objects, and only the allowed WARNINGs", func() {
		var docs []string
		for _, f := range []string{"config/manager/manager.yaml", "config/default/metrics_service.yaml", "config/network-policy/allow-metrics-traffic.yaml"} {
			b, err := os.ReadFile(filepath.Join(repoRoot, f))
			Expect(err).NotTo(HaveOccurred())
			docs = append(docs, string(b))
		}
		expectScore(strings.Join(docs, "\n---\n"), configWarnings, configIgnoredTests...)
	})

	It("reads its output format as expected", func() {
		fs := parseFindings("[CRITICAL] a/b apps/v1/Deployment: The pod does not have a matching NetworkPolicy\n[OK] c/d v1/Service\n")
		Expect(fs).To(Equal([]finding{
			{level: "CRITICAL", object: "a/b", kind: "apps/v1/Deployment", message: "The pod does not have a matching NetworkPolicy"},
			{level: "OK", object: "c/d", kind: "v1/Service"},
		}))
	})
})
