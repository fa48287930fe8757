package image_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// This file runs a container as the kubelet and a container runtime would, with the tools of a
// Linux host and no runtime: the image's root filesystem unpacked into a folder; a network, a
// mount and a UTS namespace per pod (unshare); the pod's volumes bind-mounted read-only at
// their mount paths, /proc and a minimal /dev; the root remounted read-only; then the
// entrypoint exec'd with chroot as the pod's user and group, with no_new_privs (setpriv) and no
// capabilities (a non-root exec drops them all), and exactly the container's environment.
// What it does not reproduce: seccomp (RuntimeDefault), cgroup limits, a PID namespace.

// extractImage unpacks the image of the platform from the OCI layout tarball into dir and
// returns the image's config and the annotations index.json gives the image index.
func extractImage(tarPath, dir string, platform v1.Platform) (*v1.ConfigFile, map[string]string, error) {
	layoutDir, err := os.MkdirTemp("", "image-layout-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(layoutDir)
	if err := untar(tarPath, layoutDir, false); err != nil {
		return nil, nil, fmt.Errorf("unpacking the layout: %w", err)
	}
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return nil, nil, err
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, nil, err
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	if len(topManifest.Manifests) != 1 {
		return nil, nil, fmt.Errorf("index.json lists %d manifests, want the one image index", len(topManifest.Manifests))
	}
	anns := topManifest.Manifests[0].Annotations
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	if err != nil {
		return nil, nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS != platform.OS || m.Platform.Architecture != platform.Architecture {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, nil, err
		}
		rc := mutate.Extract(img)
		defer rc.Close()
		tmp := filepath.Join(layoutDir, "fs.tar")
		f, err := os.Create(tmp)
		if err != nil {
			return nil, nil, err
		}
		if _, err := io.Copy(f, rc); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
		if err := f.Close(); err != nil {
			return nil, nil, err
		}
		return cfg, anns, untar(tmp, dir, true)
	}
	return nil, nil, fmt.Errorf("the index has no %s/%s image", platform.OS, platform.Architecture)
}

// untar unpacks a tar file into dir, refusing paths outside it; owners are kept when chown.
func untar(tarPath, dir string, chown bool) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		mode := os.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				_ = out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected tar entry type %q", h.Name, h.Typeflag)
		}
		if chown {
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		// Chmod after chown: chown clears the set-id bits, and sticky folders keep their bit.
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
	}
}

// volume is a folder on the host that the pod mounts.
type volume struct {
	hostDir   string
	mountPath string
}

// podSpec is what runPod needs: the rendered pod and container, the image, and the host folders
// holding the pod's volumes.
type podSpec struct {
	name    string
	rootfs  string
	image   *v1.ConfigFile
	pod     corev1.PodSpec
	ctr     corev1.Container
	volumes []volume
	// kubeEnv is what the kubelet adds to every container (KUBERNETES_SERVICE_HOST, ...).
	kubeEnv []string
	// forwards are the host addresses (127.0.0.1:PORT) the pod reaches at the same address in
	// its own network namespace, standing in for the cluster network.
	forwards []string
	logPath  string
}

// pod is a running pod: its process (the container's entrypoint, after the set-up) and its
// network namespace.
type pod struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	netns   *os.File
	lns     []net.Listener
	logPath string
	stopped time.Time
}

// setupScript prepares the pod's namespaces and execs the container. $1.. are, in order: the
// environment of the container (NAME=VALUE), then setpriv and chroot with the entrypoint and
// its arguments; env -i starts the container with exactly that environment. Folders are made
// beforehand (the root is read-only once mounted). fd 3 tells the test that the network
// namespace is up; fd 4 tells the script that the test's forwards listen in it.
const setupScript = `set -eu
ip link set lo up
hostname "$POD_NAME"
echo up >&3
exec 3>&-
read -r _ <&4
exec 4<&-
mount --bind "$ROOTFS" "$ROOTFS"
mount -t proc -o nosuid,nodev,noexec proc "$ROOTFS/proc"
mount -t tmpfs -o nosuid,noexec,mode=755,size=64k tmpfs "$ROOTFS/dev"
for d in null zero full random urandom; do
  touch "$ROOTFS/dev/$d"
  mount --bind "/dev/$d" "$ROOTFS/dev/$d"
done
while IFS='|' read -r src dst; do
  [ -n "$src" ] || continue
  mount --bind "$src" "$ROOTFS$dst"
  mount -o remount,bind,ro,nosuid,nodev "$ROOTFS$dst"
done <<EOF
$VOLUMES
EOF
mount -o remount,bind,ro "$ROOTFS"
exec env -i "$@"
`

// runPod starts the pod's container as the kubelet would, and returns once the forwards listen
// in its network namespace.
func runPod(s podSpec) (*pod, error) {
	env, err := containerEnv(s)
	if err != nil {
		return nil, err
	}
	argv, err := containerArgv(s)
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := containerUser(s)
	if err != nil {
		return nil, err
	}
	var mounts []string
	for _, v := range s.volumes {
		if strings.ContainsAny(v.hostDir+v.mountPath, "|\n") {
			return nil, fmt.Errorf("volume path %q", v.mountPath)
		}
		if err := os.MkdirAll(filepath.Join(s.rootfs, v.mountPath), 0o755); err != nil {
			return nil, err
		}
		mounts = append(mounts, v.hostDir+"|"+v.mountPath)
	}
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(s.rootfs, d), 0o755); err != nil {
			return nil, err
		}
	}

	args := []string{"--net", "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", setupScript, "sh"}
	args = append(args, env...)
	groupList := make([]string, 0, len(groups))
	for _, g := range groups {
		groupList = append(groupList, strconv.FormatInt(g, 10))
	}
	args = append(args, "setpriv", "--no-new-privs", "chroot",
		fmt.Sprintf("--userspec=%d:%d", uid, gid), "--groups="+strings.Join(groupList, ","), s.rootfs)
	args = append(args, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"POD_NAME=" + s.name,
		"ROOTFS=" + s.rootfs,
		"VOLUMES=" + strings.Join(mounts, "\n"),
	}
	upR, upW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// No Pdeathsig: it fires when the forking thread ends (inNetns ends threads), and the
	// change of user clears it anyway; AfterSuite kills the pods.
	cmd.ExtraFiles = []*os.File{upW, goR}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_ = upW.Close()
	_ = goR.Close()
	_ = logFile.Close()
	p := &pod{name: s.name, cmd: cmd, done: make(chan struct{}), logPath: s.logPath}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	fail := func(err error) (*pod, error) {
		p.kill()
		return nil, fmt.Errorf("pod %s: %w\n%s", s.name, err, p.log())
	}

	line := make([]byte, 3)
	if _, err := io.ReadFull(upR, line); err != nil {
		return fail(fmt.Errorf("waiting for the network namespace: %w", err))
	}
	_ = upR.Close()
	p.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
	if err != nil {
		return fail(err)
	}
	for _, addr := range s.forwards {
		var l net.Listener
		err := p.inNetns(func() error {
			var err error
			l, err = net.Listen("tcp", addr)
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("listening on %s in the pod: %w", addr, err))
		}
		p.lns = append(p.lns, l)
		go forward(l, addr)
	}
	if _, err := goW.Write([]byte("go\n")); err != nil {
		return fail(err)
	}
	_ = goW.Close()
	return p, nil
}

// containerEnv is the container's environment as a runtime builds it: the image's, then the
// kubelet's service variables and HOSTNAME, then the container's own (literal values only; the
// chart uses no valueFrom).
func containerEnv(s podSpec) ([]string, error) {
	env := append([]string{}, s.image.Config.Env...)
	env = append(env, "HOSTNAME="+s.name)
	env = append(env, s.kubeEnv...)
	for _, e := range s.ctr.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("env %s: valueFrom is not supported here", e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	for _, e := range env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return nil, fmt.Errorf("env entry %q", e)
		}
	}
	return env, nil
}

// containerArgv is the command line as Kubernetes builds it from the image and the container.
func containerArgv(s podSpec) ([]string, error) {
	var argv []string
	switch {
	case len(s.ctr.Command) > 0:
		argv = append(append(argv, s.ctr.Command...), s.ctr.Args...)
	case len(s.ctr.Args) > 0:
		argv = append(append(argv, s.image.Config.Entrypoint...), s.ctr.Args...)
	default:
		argv = append(append(argv, s.image.Config.Entrypoint...), s.image.Config.Cmd...)
	}
	if len(argv) == 0 || !path.IsAbs(argv[0]) {
		return nil, fmt.Errorf("no absolute entrypoint in %q", argv)
	}
	return argv, nil
}

// containerUser is the user, group and supplementary groups of the container: the container's
// security context over the pod's, and the pod's fsGroup as a supplementary group.
func containerUser(s podSpec) (uid, gid int64, groups []int64, err error) {
	psc, csc := s.pod.SecurityContext, s.ctr.SecurityContext
	if psc == nil || csc == nil {
		return 0, 0, nil, errors.New("the pod and the container must set a security context")
	}
	pick := func(c, p *int64) (int64, bool) {
		if c != nil {
			return *c, true
		}
		if p != nil {
			return *p, true
		}
		return 0, false
	}
	uid, okU := pick(csc.RunAsUser, psc.RunAsUser)
	gid, okG := pick(csc.RunAsGroup, psc.RunAsGroup)
	if !okU || !okG {
		return 0, 0, nil, errors.New("runAsUser and runAsGroup must be set (the image's USER is not used here)")
	}
	if uid == 0 {
		return 0, 0, nil, errors.New("runAsUser 0")
	}
	groups = append(groups, gid)
	if psc.FSGroup != nil && *psc.FSGroup != gid {
		groups = append(groups, *psc.FSGroup)
	}
	groups = append(groups, psc.SupplementalGroups...)
	return uid, gid, groups, nil
}

// forward copies connections accepted in the pod's namespace to the same address on the host.
func forward(l net.Listener, addr string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer out.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(out, in)
				_ = out.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(in, out)
				_ = in.(*net.TCPConn).CloseWrite()
			}()
			wg.Wait()
		}()
	}
}

// inNetns runs fn on an OS thread that has joined the pod's network namespace. The thread is
// locked and never unlocked, so that Go ends it with the goroutine rather than reuse it.
func (p *pod) inNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(p.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// httpClient is a client whose connections start in the pod's network namespace, as the
// kubelet's probes and a scraper in the cluster reach the pod.
func (p *pod) httpClient(transport *http.Transport) *http.Client {
	if transport == nil {
		transport = &http.Transport{}
	}
	transport.DisableKeepAlives = true
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := p.inNetns(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Transport: transport, Timeout: 5 * time.Second}
}

// pid is the container's process id.
func (p *pod) pid() int { return p.cmd.Process.Pid }

// exited reports whether the container has ended.
func (p *pod) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM, as the kubelet does to stop a container, and records when.
func (p *pod) terminate() {
	p.stopped = time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}

// kill ends the container and closes the forwards.
func (p *pod) kill() {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	for _, l := range p.lns {
		_ = l.Close()
	}
	if p.netns != nil {
		_ = p.netns.Close()
	}
}

func (p *pod) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}
