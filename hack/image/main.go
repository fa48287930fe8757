// Command image builds the manager's OCI image without a container daemon: a static manager
// binary per platform, /etc/passwd and /etc/group with the nonroot user (65532), the build
// machine's CA bundle and the OCI labels, in one image index, written as an OCI image layout
// tarball (and, with -push, pushed to a registry).
//
// The build is reproducible: file times, owners and modes are fixed, tar entries are sorted,
// the created time comes from SOURCE_DATE_EPOCH (or the commit time), and the binaries are built
// with -trimpath. Two builds of one commit on one machine give the same index digest.
//
// The Dockerfile builds the same image with Docker; test/image checks that both give the same
// user, entrypoint, working directory, labels and linker flags.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

// What the image is; the Dockerfile says the same (test/image checks it).
const (
	entrypoint = "/manager"
	user       = "65532:65532"
	workingDir = "/"
	// The CA bundle's path in the image, where Go's crypto/x509 looks first on Linux.
	caBundlePath = "etc/ssl/certs/ca-certificates.crt"
)

// The environment of the image, as distroless/static sets it.
var imageEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"SSL_CERT_FILE=/" + caBundlePath,
}

// /etc/passwd and /etc/group as in distroless/static:nonroot.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
)

type options struct {
	root       string
	out        string
	repository string
	tag        string
	version    string
	revision   string
	source     string
	created    time.Time
	platforms  []v1.Platform
	caBundle   string
	push       bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	var platforms, created string
	flag.StringVar(&o.root, "root", ".", "Repository root: the manager's main package, Chart.yaml and git.")
	flag.StringVar(&o.out, "out", "bin/image/cipherscale-operator.oci.tar", "Where to write the OCI image layout tarball.")
	flag.StringVar(&o.repository, "repository", "ghcr.io/cipherscale/cipherscale-operator", "Image repository.")
	flag.StringVar(&o.tag, "tag", "", "Image tag; empty means the chart's appVersion.")
	flag.StringVar(&o.version, "version", "", "Version stamped into the manager (-X main.version); empty means git describe.")
	flag.StringVar(&o.revision, "revision", "", "Source revision label; empty means git rev-parse HEAD.")
	flag.StringVar(&o.source, "source", "https://github.com/cipherscale/cipherscale-operator", "Source repository label.")
	flag.StringVar(&created, "created", "", "Creation time (RFC 3339); empty means $SOURCE_DATE_EPOCH, else the commit time.")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "Platforms of the index, comma separated.")
	flag.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image.")
	flag.BoolVar(&o.push, "push", false, "Also push the index to REPOSITORY:TAG (credentials from the Docker config).")
	flag.Parse()

	var err error
	if err = o.defaults(created); err != nil {
		return err
	}
	for _, p := range strings.Split(platforms, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || osName != "linux" {
			return fmt.Errorf("platform %q: want linux/ARCH", p)
		}
		o.platforms = append(o.platforms, v1.Platform{OS: osName, Architecture: arch})
	}

	ca, err := os.ReadFile(o.caBundle)
	if err != nil {
		return fmt.Errorf("reading the CA bundle: %w", err)
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "cipherscale-operator",
		"org.opencontainers.image.description": "Manages the users of a Cipherscale tenant from Kubernetes.",
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.version":     o.tag,
		"org.opencontainers.image.created":     o.created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	tmp, err := os.MkdirTemp("", "cipherscale-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range o.platforms {
		bin := filepath.Join(tmp, "manager-"+p.Architecture)
		if err := o.buildManager(p, bin); err != nil {
			return err
		}
		img, err := o.image(p, bin, ca, labels)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		plat := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	index := mutate.Annotations(mutate.AppendManifests(idx, adds...), labels).(v1.ImageIndex)

	ref := o.repository + ":" + o.tag
	if err := writeLayoutTar(index, o.out, ref, o.tag, o.created); err != nil {
		return err
	}
	if err := report(index, o.out, ref); err != nil {
		return err
	}
	if o.push {
		tagRef, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(tagRef, index, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		d, _ := index.Digest()
		fmt.Printf("pushed %s@%s\n", o.repository, d)
	}
	return nil
}

// defaults fills in the tag, version, revision and creation time from the repository.
func (o *options) defaults(created string) error {
	if o.tag == "" {
		b, err := os.ReadFile(filepath.Join(o.root, "charts", "cipherscale-operator", "Chart.yaml"))
		if err != nil {
			return fmt.Errorf("reading the chart's appVersion: %w", err)
		}
		var chart struct {
			AppVersion string `json:"appVersion"`
		}
		if err := yaml.Unmarshal(b, &chart); err != nil {
			return err
		}
		if chart.AppVersion == "" {
			return errors.New("no appVersion in Chart.yaml")
		}
		o.tag = chart.AppVersion
	}
	if _, err := name.NewTag(o.repository + ":" + o.tag); err != nil {
		return fmt.Errorf("image reference: %w", err)
	}
	if o.version == "" {
		o.version = o.git("dev", "describe", "--tags", "--always", "--dirty")
	}
	if o.revision == "" {
		o.revision = o.git("unknown", "rev-parse", "HEAD")
	}
	switch {
	case created != "":
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return fmt.Errorf("-created: %w", err)
		}
		o.created = t
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		o.created = time.Unix(s, 0)
	default:
		s, err := strconv.ParseInt(o.git("0", "log", "-1", "--format=%ct"), 10, 64)
		if err != nil {
			return fmt.Errorf("commit time: %w", err)
		}
		o.created = time.Unix(s, 0)
	}
	o.created = o.created.UTC()
	return nil
}

func (o *options) git(fallback string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = o.root
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return fallback
	}
	return strings.TrimSpace(string(out))
}

// buildManager builds the manager for the platform with the flags of `make build` (and the
// Dockerfile).
func (o *options) buildManager(p v1.Platform, out string) error {
	// -buildvcs=false: as in the Dockerfile, whose context has no .git, the binary carries no
	// VCS stamp (the version and the revision label say it), whatever GOFLAGS says.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version="+o.version, "-o", out, ".")
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the manager for %s/%s: %w", p.OS, p.Architecture, err)
	}
	return nil
}

// file is one entry of the image's single layer.
type file struct {
	mode     int64
	uid, gid int
	data     []byte
	dir      bool
}

// image assembles the image of one platform: one layer, the config and the labels.
func (o *options) image(p v1.Platform, bin string, ca []byte, labels map[string]string) (v1.Image, error) {
	manager, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	files := map[string]file{
		"etc/passwd":   {mode: 0o644, data: []byte(passwd)},
		"etc/group":    {mode: 0o644, data: []byte(group)},
		caBundlePath:   {mode: 0o644, data: ca},
		"home/nonroot": {mode: 0o700, uid: 65532, gid: 65532, dir: true},
		"tmp":          {mode: 0o1777, dir: true},
		"manager":      {mode: 0o755, data: manager},
	}
	layerData, err := layerTar(files, o.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: o.created}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "hack/image: /manager, /etc/passwd, /etc/group, CA certificates",
			Comment:   "built without a container daemon",
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = p.Architecture, p.OS
	cf.Created = created
	cf.Author = ""
	cf.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		User:       user,
		WorkingDir: workingDir,
		Env:        imageEnv,
		Labels:     labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// layerTar writes the files, and every folder above them, as a gzipped tar with sorted entries,
// fixed times, owners and modes.
func layerTar(files map[string]file, mtime time.Time) ([]byte, error) {
	all := map[string]file{}
	for p, f := range files {
		all[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = file{mode: 0o755, dir: true}
			}
		}
	}
	// A folder named explicitly keeps its own mode and owner.
	for p, f := range files {
		all[p] = f
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, p := range names {
		f := all[p]
		h := &tar.Header{
			Name: p, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime,
			Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data)),
		}
		if f.uid == 65532 {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if f.dir {
			h.Name, h.Typeflag, h.Size = p+"/", tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayoutTar writes the index as an OCI image layout, in a tarball with sorted entries and
// fixed times; index.json names it with the tag (org.opencontainers.image.ref.name) and the
// full reference (io.containerd.image.name, which `ctr import` and others read).
func writeLayoutTar(index v1.ImageIndex, out, ref, tag string, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "cipherscale-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return err
	}
	var names []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmpOut := out + ".tmp"
	f, err := os.Create(tmpOut)
	if err != nil {
		return err
	}
	defer os.Remove(tmpOut)
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: st.Size()}
		if st.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = rel+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !st.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmpOut, out)
}

// report prints the index digest and, per platform, the manifest digest and the sizes.
func report(index v1.ImageIndex, out, ref string) error {
	d, err := index.Digest()
	if err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("image %s\n  index  %s\n  layout %s (%d bytes)\n", ref, d, out, st.Size())
	im, err := index.IndexManifest()
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		img, err := index.Image(m.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		var compressed, uncompressed int64
		for _, l := range layers {
			s, err := l.Size()
			if err != nil {
				return err
			}
			compressed += s
			rc, err := l.Uncompressed()
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, rc)
			_ = rc.Close()
			if err != nil {
				return err
			}
			uncompressed += n
		}
		fmt.Printf("  %s/%s %s: layers %d bytes compressed, %d bytes uncompressed\n",
			m.Platform.OS, m.Platform.Architecture, m.Digest, compressed, uncompressed)
	}
	return nil
}
