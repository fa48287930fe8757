package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Root returns the repository root: the nearest folder above the working directory with go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ControlPlane is a local kube-apiserver and etcd with the operator's CRDs installed.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Client is an admin client with the operator's kinds and no client-side throttling.
	Client client.Client
	// Kubeconfig is the path of an admin kubeconfig for kubectl.
	Kubeconfig string
}

// StartControlPlane starts etcd and kube-apiserver from root/bin/k8s (or $KUBEBUILDER_ASSETS),
// installs the CRDs of root/config/crd/bases and writes an admin kubeconfig to kubeconfigPath.
func StartControlPlane(root, kubeconfigPath string) (*ControlPlane, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		// A cold start on a busy two-core machine can take longer than the default 20s.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	fast := rest.CopyConfig(cfg)
	fast.QPS = -1
	kube, err := client.New(fast, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	cp := &ControlPlane{Env: env, Config: cfg, Client: kube, Kubeconfig: kubeconfigPath}
	if err := cp.WriteKubeconfig(kubeconfigPath, "cipherscale-admin", []string{"system:masters"}); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

// WriteKubeconfig writes a kubeconfig for a user of the control plane with these groups.
func (cp *ControlPlane) WriteKubeconfig(path, user string, groups []string) error {
	u, err := cp.Env.ControlPlane.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return fmt.Errorf("adding user %s: %w", user, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}

// Stop stops kube-apiserver and etcd.
func (cp *ControlPlane) Stop() error { return cp.Env.Stop() }

// Process is a child process whose output goes to a log file.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	err     error
}

// Start starts a process with its output in logPath. env is added to the current environment.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to timeout, then SIGKILL.
func (p *Process) Stop(timeout time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process and waits for it.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Done is closed when the process ends.
func (p *Process) Done() <-chan struct{} { return p.done }

// Log returns the process's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Simulator is the cipherscale-sim command, started as a process.
type Simulator struct {
	*Process
	URL string
}

// StartSimulator starts bin/cipherscale-sim on a free loopback port and waits for its address.
func StartSimulator(bin, logPath, apiKey string, extraArgs ...string) (*Simulator, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--listen", "127.0.0.1:0"}, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CIPHERSCALE_API_KEY="+apiKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the simulator: %w", err)
	}
	p := &Process{Name: "cipherscale-sim", Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintln(logFile, line)
			if i := strings.Index(line, "listening on "); i >= 0 && !sent {
				urlCh <- strings.TrimSpace(line[i+len("listening on "):])
				sent = true
			}
		}
		_, _ = io.Copy(logFile, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	select {
	case u := <-urlCh:
		return &Simulator{Process: p, URL: u}, nil
	case <-p.done:
		return nil, fmt.Errorf("the simulator exited: %s", p.Log())
	case <-time.After(30 * time.Second):
		p.Kill()
		return nil, errors.New("the simulator did not say where it listens within 30s")
	}
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Kubectl runs root/bin/k8s/kubectl (or kubectl on the PATH) with the kubeconfig and returns
// its combined output.
func Kubectl(ctx context.Context, root, kubeconfig string, args ...string) (string, error) {
	bin := filepath.Join(root, "bin", "k8s", "kubectl")
	if _, err := os.Stat(bin); err != nil {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Group runs cleanup functions in reverse order, once.
type Group struct {
	mu  sync.Mutex
	fns []func()
}

// Defer adds a cleanup.
func (g *Group) Defer(fn func()) {
	g.mu.Lock()
	g.fns = append(g.fns, fn)
	g.mu.Unlock()
}

// Run runs the cleanups, last first.
func (g *Group) Run() {
	g.mu.Lock()
	fns := g.fns
	g.fns = nil
	g.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
