// Command demo runs the operator end to end on one machine: a local kube-apiserver and etcd, the
// Cipherscale simulator seeded with a few roles and groups, and the manager binary, then applies
// config/samples and shows the result. `make demo` runs it; DEMO_EXIT=1 (or --exit) stops after
// the check, for tests.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
	"github.com/cipherscale/cipherscale-operator/internal/onboarding"
)

const (
	apiKey = "demo-api-key"
	// qaKey is the key of the second tenant, qa: the CipherscaleTenant of namespace team-qa
	// reads it from its Secret.
	qaKey = "demo-qa-api-key"
	// qaNamespace holds the qa tenant, its Secret and its users, as
	// config/samples/iam_v1alpha1_tenants.yaml declares them.
	qaNamespace = "team-qa"
)

func main() {
	exit := flag.Bool("exit", os.Getenv("DEMO_EXIT") == "1", "Exit 0 after the check instead of running until Ctrl-C (also DEMO_EXIT=1).")
	timeout := flag.Duration("timeout", 3*time.Minute, "How long to wait for every object to be Ready.")
	binDir := flag.String("bin-dir", "", "Folder holding the manager and cipherscale-sim binaries (default bin/).")
	workDir := flag.String("work-dir", "", "Folder for the kubeconfig and the logs (default bin/demo).")
	flag.Parse()
	// Its clients log nothing of their own: what it has to say, it prints. (Without a logger,
	// controller-runtime prints a warning with a stack trace after 30 seconds.)
	ctrllog.SetLogger(logr.Discard())
	if err := run(*exit, *timeout, *binDir, *workDir); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

var stepNo int

func step(format string, args ...any) {
	stepNo++
	fmt.Printf("\n==> [%d] %s\n", stepNo, fmt.Sprintf(format, args...))
}

func run(exitAfterCheck bool, timeout time.Duration, binDir, dir string) (err error) {
	root, err := devenv.Root()
	if err != nil {
		return err
	}
	if binDir == "" {
		binDir = filepath.Join(root, "bin")
	}
	if dir == "" {
		dir = filepath.Join(root, "bin", "demo")
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cleanup devenv.Group
	defer func() {
		fmt.Println("\n==> Stopping the manager, the simulator, kube-apiserver and etcd")
		cleanup.Run()
	}()

	step("Starting etcd and kube-apiserver (bin/k8s), installing the CRDs")
	cp, err := devenv.StartControlPlane(root, kubeconfig)
	if err != nil {
		return err
	}
	cleanup.Defer(func() { _ = cp.Stop() })
	fmt.Printf("    API server %s; kubeconfig %s\n", cp.Config.Host, rel(root, kubeconfig))

	step("Starting the Cipherscale simulator with the demo seed (roles, groups, the tenant owner)")
	sim, err := devenv.StartSimulator(filepath.Join(binDir, "cipherscale-sim"), filepath.Join(dir, "simulator.log"), apiKey, "--demo-seed")
	if err != nil {
		return err
	}
	cleanup.Defer(func() { sim.Stop(5 * time.Second) })
	control := devenv.NewSimControl(sim.URL)
	if _, err := control.AddUser(ctx, simulator.UserSeed{Email: "contractor@example.com", Status: cipherscale.StatusActive, FirstName: "Casey", LastName: "Contractor"}); err != nil {
		return fmt.Errorf("adding the contractor by hand: %w", err)
	}
	fmt.Printf("    simulator %s; added contractor@example.com by hand (no CipherscaleUser manages it)\n", sim.URL)

	step("Starting a second simulator: the qa tenant")
	qaSim, err := devenv.StartSimulator(filepath.Join(binDir, "cipherscale-sim"), filepath.Join(dir, "simulator-qa.log"), qaKey)
	if err != nil {
		return err
	}
	cleanup.Defer(func() { qaSim.Stop(5 * time.Second) })
	qaControl := devenv.NewSimControl(qaSim.URL)
	fmt.Printf("    simulator %s\n", qaSim.URL)

	step("Applying config/samples: ClusterCipherscaleTenant default (its url set to the simulator), its Secret, users and memberships")
	// The sample tenant's Secret, created and annotated as the sample says.
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cipherscale-system"}}); err != nil {
		return err
	}
	if err := cp.Client.Create(ctx, devenv.TenantSecret(types.NamespacedName{Namespace: "cipherscale-system", Name: "cipherscale-api-key"},
		apiKey, "ClusterCipherscaleTenant/default")); err != nil {
		return err
	}
	out, err := devenv.Kubectl(ctx, root, kubeconfig, "apply", "-k", filepath.Join(root, "config", "samples"))
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	// The samples' default tenant, pointed at the simulator and read every 30s.
	out, err = devenv.Kubectl(ctx, root, kubeconfig, "patch", "clustercipherscaletenant", "default", "--type=merge",
		"-p", `{"spec":{"url":"`+sim.URL+`","resyncInterval":"30s"}}`)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("Starting the operator (bin/manager): its flags are process settings only")
	probe, err := devenv.FreePort()
	if err != nil {
		return err
	}
	mgr, err := devenv.Start("manager", filepath.Join(dir, "manager.log"),
		[]string{"KUBECONFIG=" + kubeconfig},
		filepath.Join(binDir, "manager"),
		// The tenant objects name simulators on loopback, over plain http.
		devenv.ManagerURLArgs[0], devenv.ManagerURLArgs[1],
		"--metrics-bind-address", "0", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe))
	if err != nil {
		return err
	}
	cleanup.Defer(func() { mgr.Stop(10 * time.Second) })
	fmt.Printf("    logs: %s\n", rel(root, mgr.LogPath))

	step("A second tenant: the CipherscaleTenant qa of namespace %s (config/samples/iam_v1alpha1_tenants.yaml, its url set to the second simulator), its Secret and a few users", qaNamespace)
	qaObjs, err := qaTenant(filepath.Join(root, "config", "samples", "iam_v1alpha1_tenants.yaml"), qaSim.URL)
	if err != nil {
		return err
	}
	for _, o := range qaObjs {
		if err := cp.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		fmt.Printf("    %s/%s created\n", strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind), o.GetName())
	}

	step("Waiting until both tenants and every CipherscaleUser and CipherscaleGroupMembership are Ready")
	deadline := fmt.Sprintf("--timeout=%s", timeout)
	for _, kind := range []string{"clustercipherscaletenants", "cipherscaletenants", "cipherscaleusers", "cipherscalegroupmemberships"} {
		out, err := devenv.Kubectl(ctx, root, kubeconfig, "wait", "--for=condition=Ready", kind, "--all", "--all-namespaces", deadline)
		if err != nil {
			fmt.Println(indent(mgr.Log()))
			return err
		}
		fmt.Print(indent(out))
	}
	if mgr.Exited() {
		return fmt.Errorf("the manager exited:\n%s", mgr.Log())
	}

	step("The objects, as kubectl shows them")
	out, err = devenv.Kubectl(ctx, root, kubeconfig, "get", "clustercipherscaletenants,cipherscaletenants,csu,csgm", "--all-namespaces", "-o", "wide")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("The default tenant, as the Cipherscale simulator holds it")
	if err := printTenant(ctx, control); err != nil {
		return err
	}
	step("The qa tenant, as the second simulator holds it")
	if err := printTenant(ctx, qaControl); err != nil {
		return err
	}

	step("Checking each tenant (GET /_sim/users) against its own objects")
	var users iamv1alpha1.CipherscaleUserList
	var memberships iamv1alpha1.CipherscaleGroupMembershipList
	if err := cp.Client.List(ctx, &users); err != nil {
		return err
	}
	if err := cp.Client.List(ctx, &memberships); err != nil {
		return err
	}
	records, err := control.Users(ctx)
	if err != nil {
		return err
	}
	defUsers, defMemberships := ofTenant(nil, users.Items, memberships.Items)
	check := checkTenant(defUsers, defMemberships, records)
	fmt.Printf("    default tenant: %s\n", check)
	if len(check.Problems) > 0 {
		return fmt.Errorf("the default tenant does not match the samples:\n%s", indent(strings.Join(check.Problems, "\n")))
	}
	qaRecords, err := qaControl.Users(ctx)
	if err != nil {
		return err
	}
	qaUsers, qaMemberships := ofTenant(&iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}, users.Items, memberships.Items)
	qaCheck := checkTenant(qaUsers, qaMemberships, qaRecords)
	fmt.Printf("    qa tenant: %s\n", qaCheck)
	if len(qaCheck.Problems) > 0 || len(qaUsers) == 0 {
		return fmt.Errorf("the qa tenant does not match its objects:\n%s", indent(strings.Join(qaCheck.Problems, "\n")))
	}
	if len(defUsers)+len(qaUsers) != len(users.Items) {
		return fmt.Errorf("%d CipherscaleUsers name neither tenant", len(users.Items)-len(defUsers)-len(qaUsers))
	}

	step("Both tenants' status: users, undeclared users (the default tenant reports them) and removal budget")
	// Each tenant's status is written by its reconciler, the default tenant's like any other's:
	// wait until it counted every user its simulator holds (at most a resync after the last
	// change) and reported the undeclared ones.
	counted := func(st iamv1alpha1.TenantStatus, want int) bool {
		return st.Users != nil && int(st.Users.Total) == want && st.RemovalBudget != nil && st.Declared != nil
	}
	for end := time.Now().Add(timeout); ; {
		def := &iamv1alpha1.ClusterCipherscaleTenant{}
		qa := &iamv1alpha1.CipherscaleTenant{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
			return err
		}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: qaNamespace, Name: "qa"}, qa); err != nil {
			return err
		}
		if counted(def.Status, len(records)) && def.Status.Undeclared != nil && counted(qa.Status, len(qaRecords)) {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("the tenants' status does not count their users after %s", timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, args := range [][]string{{"get", "ccst"}, {"get", "cst", "--all-namespaces"}} {
		fmt.Printf("    $ kubectl %s\n", strings.Join(args, " "))
		out, err := devenv.Kubectl(ctx, root, kubeconfig, args...)
		if err != nil {
			return err
		}
		fmt.Print(indent(out))
	}

	step("kubectl cipherscale status")
	var statusOut bytes.Buffer
	code := onboarding.Main(ctx, []string{"status", "--kubeconfig", kubeconfig},
		onboarding.Env{Stdout: &statusOut, Stderr: &statusOut, Getenv: os.Getenv})
	fmt.Print(indent(statusOut.String()))
	fmt.Printf("    (exit status %d: 0 everything is Ready, 2 something needs a person)\n", code)
	if code == onboarding.ExitError {
		return fmt.Errorf("kubectl cipherscale status failed")
	}

	if exitAfterCheck {
		fmt.Println("\nDemo check passed: every object is Ready and each tenant matches its objects.")
		return nil
	}
	fmt.Printf(`
The operator is running. In another terminal, try:
  export KUBECONFIG=%[1]s
  kubectl get ccst default                     # the default tenant: users, declared, undeclared
  kubectl get csu,csgm                         # the objects and their state
  kubectl get cipherscaletenants,csu -n team-qa  # the second tenant and its users
  kubectl edit csu jane-smith                  # change roles, groups or the name; watch the tenant follow
  kubectl describe csu jane-smith              # conditions and events
  kubectl annotate csu sam-lee cipherscale.com/resend-invitation=$(date +%%s)   # resend an invitation
  kubectl delete csu alex-kim                  # deletes the tenant user (deletionPolicy Delete)
  curl -s %[2]s/_sim/users | jq                # the tenant
  curl -s -X POST %[2]s/_sim/users/<id>/accept # the invitee accepts: state becomes Active
  # drift: remove jane from Engineering behind the operator's back, and watch it come back
  curl -s -X DELETE -H 'apikey: %[3]s' %[2]s/tenants/users/<id>/groups/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
Logs: %[4]s and %[5]s. The operator resyncs every 30s here.
Press Ctrl-C to stop everything.
`, kubeconfig, sim.URL, apiKey, rel(root, mgr.LogPath), rel(root, sim.LogPath))
	select {
	case <-ctx.Done():
	case <-mgr.Done():
		return fmt.Errorf("the manager exited:\n%s", mgr.Log())
	}
	return nil
}

func printTenant(ctx context.Context, control *devenv.SimControl) error {
	records, err := control.Users(ctx)
	if err != nil {
		return err
	}
	sort.Slice(records, func(i, j int) bool { return records[i].User.Email < records[j].User.Email })
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "    EMAIL\tSTATUS\tNAME\tDIRECT ROLES\tGROUPS\tINVITATIONS")
	for _, r := range records {
		u := r.User
		var roles, groups []string
		for _, role := range u.Roles {
			roles = append(roles, role.Name)
		}
		for _, g := range u.Groups {
			groups = append(groups, g.Name)
		}
		name := strings.TrimSpace(u.FirstName + " " + u.LastName)
		if u.IsOwner {
			name += " (owner)"
		}
		fmt.Fprintf(w, "    %s\t%s\t%s\t%s\t%s\t%d\n", u.Email, u.Status, dash(name), dash(strings.Join(roles, ",")), dash(strings.Join(groups, ",")), r.InvitationsSent)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}
