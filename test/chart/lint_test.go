package chart_test

import (
	"bytes"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("helm lint", func() {
	It("passes with the default values", func() {
		out, err := helm("lint", chartDir, "--set", "apiKey.existingSecret=x")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("0 chart(s) failed"))
	})

	It("passes in strict mode, with the default and with the changed values", func() {
		out, err := helm("lint", "--strict", chartDir, "--set", "apiKey.existingSecret=x")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("0 chart(s) failed"))
		out, err = helm("lint", "--strict", chartDir, "--values", valuesFile(customValues))
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("0 chart(s) failed"))
	})
})

var _ = Describe("the chart's CRDs", func() {
	It("are byte-identical to config/crd/bases (make manifests copies them)", func() {
		bases, err := filepath.Glob(filepath.Join(configCRDsDir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(bases).To(HaveLen(4))
		chartCRDs, err := filepath.Glob(filepath.Join(chartCRDsDir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(chartCRDs).To(HaveLen(len(bases)), "the chart holds the same CRD files")
		for _, b := range bases {
			want, err := os.ReadFile(b)
			Expect(err).NotTo(HaveOccurred())
			got, err := os.ReadFile(filepath.Join(chartCRDsDir, filepath.Base(b)))
			Expect(err).NotTo(HaveOccurred(), "the chart lacks %s: run `make manifests`", filepath.Base(b))
			Expect(bytes.Equal(got, want)).To(BeTrue(), "%s differs from config/crd/bases: run `make manifests`", filepath.Base(b))
		}
	})
})
