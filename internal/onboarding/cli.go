package onboarding

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Exit statuses of the plugin (plan's follow Terraform's -detailed-exitcode).
const (
	ExitOK      = 0
	ExitError   = 1
	ExitChanges = 2
)

// APIKeyEnv is the environment variable the API key is read from.
const APIKeyEnv = "CIPHERSCALE_API_KEY"

const usage = `kubectl cipherscale: bring an existing Cipherscale tenant under the operator, and see its state.

Usage:
  kubectl cipherscale export [--tenant KIND/NAME | --api-url URL] [--namespace NS] [-o DIR] [--memberships]
  kubectl cipherscale plan   [-f FILE|DIR ...] [--tenant KIND/NAME | --api-url URL] [--namespace NS]
  kubectl cipherscale status [--tenant KIND/NAME] [--namespace NS] [--reason REASON]

export writes one CipherscaleUser per tenant user (deletionPolicy Orphan), to stdout or, with
-o DIR, one file per object and a kustomization.yaml.
plan prints what the operator would do with the manifests (or, without -f, the cluster's
objects) and writes nothing. Exit status: 0 nothing would change, 2 something would, 1 error.
With --tenant it applies the tenant object's trust rules (spec.adoption, spec.privileged); with
--api-url it assumes the tenant's default: no namespace may adopt users or act privileged.
status shows each tenant as the operator last saw it (the cluster only, never the API). Exit
status: 0 everything is Ready, 2 something needs a person, 1 error.

The API key comes from --api-key-file, from the tenant object's Secret with --tenant, or from
$CIPHERSCALE_API_KEY; never from a flag's value.

Run "kubectl cipherscale COMMAND --help" for a command's flags.
`

// Env is what the plugin reads from its surroundings.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Now is the clock (for new objects' creation times in a plan).
	Now func() time.Time
}

// common are the flags both commands take.
type common struct {
	tenant, apiURL, apiKeyFile, namespace, kubeconfig, context string
	allowInsecure                                              bool
	// trust is what the tenant object allows, set by connect with --tenant; nil without one.
	trust *TenantTrust
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.tenant, "tenant", "", "The tenant object, KIND/NAME (ClusterCipherscaleTenant/prod, CipherscaleTenant/qa): its URL and its Secret's key are used.")
	fs.StringVar(&c.apiURL, "api-url", "", "Base URL of the Cipherscale API (default "+cipherscale.DefaultBaseURL+"), without --tenant: the objects that name no tenantRef, those of ClusterCipherscaleTenant/default, are compared with it.")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "", "File holding the API key. Without it: the tenant's Secret with --tenant, else $"+APIKeyEnv+".")
	fs.StringVar(&c.namespace, "namespace", "", "Namespace of the objects (export writes it into them; plan gives it to manifests without one) and of a CipherscaleTenant.")
	fs.StringVar(&c.namespace, "n", "", "Short for --namespace.")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path of the kubeconfig (default $KUBECONFIG or ~/.kube/config).")
	fs.StringVar(&c.context, "context", "", "The kubeconfig context to use.")
	fs.BoolVar(&c.allowInsecure, "allow-insecure-http", false, "Allow a plain-HTTP API URL on a non-loopback host.")
}

// Main runs the plugin with args (without the program name) and returns its exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stdout, usage)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	var key string // known once read, to scrub it from every message
	var err error
	code := ExitOK
	switch args[0] {
	case "export":
		code, key, err = runExport(ctx, args[1:], env)
	case "plan":
		code, key, err = runPlan(ctx, args[1:], env)
	case "status":
		code, key, err = runStatus(ctx, args[1:], env)
	default:
		err = fmt.Errorf("unknown command %q: use export, plan or status", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		msg := err.Error()
		if key != "" {
			msg = strings.ReplaceAll(msg, key, "[redacted]")
		}
		fmt.Fprintln(env.Stderr, "error:", msg)
		return ExitError
	}
	return code
}

func newFlagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("kubectl cipherscale "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// connect resolves the tenant's URL and key and returns a read-only client. The key is returned
// too, so that messages can be scrubbed of it.
func (c *common) connect(ctx context.Context, env Env, cluster func() (*Cluster, error)) (*cipherscale.Client, TenantRef, string, error) {
	var ref TenantRef
	if c.tenant != "" && c.apiURL != "" {
		return nil, ref, "", errors.New("--tenant and --api-url exclude each other: the tenant object names its URL")
	}
	url := c.apiURL
	urlFrom := "--api-url"
	var key string
	if c.tenant != "" {
		var err error
		if ref, err = ParseTenantRef(c.tenant); err != nil {
			return nil, ref, "", err
		}
		cl, err := cluster()
		if err != nil {
			return nil, ref, "", err
		}
		ns := c.namespace
		if ns == "" {
			ns = cl.Namespace
		}
		tc, err := cl.ReadTenant(ctx, ref, ns)
		if err != nil {
			return nil, ref, "", err
		}
		url, key = tc.URL, tc.Key
		c.trust = &tc.Trust
		urlFrom = "spec.url of " + ref.Kind + " " + ref.Name
	}
	if c.apiKeyFile != "" {
		k, err := os.ReadFile(c.apiKeyFile)
		if err != nil {
			return nil, ref, key, fmt.Errorf("--api-key-file: %w", err)
		}
		key = strings.TrimSpace(string(k))
		if key == "" {
			return nil, ref, "", fmt.Errorf("--api-key-file: %s is empty", c.apiKeyFile)
		}
	}
	if key == "" {
		key = strings.TrimSpace(env.Getenv(APIKeyEnv))
	}
	if key == "" {
		return nil, ref, "", fmt.Errorf("no API key: set $%s, or use --api-key-file or --tenant", APIKeyEnv)
	}
	if url == "" {
		url = cipherscale.DefaultBaseURL
	}
	api, err := cipherscale.New(cipherscale.Config{
		BaseURL: url, AllowInsecureHTTP: c.allowInsecure, Key: cipherscale.StaticKey(key),
		UserAgent: "kubectl-cipherscale",
	})
	if err != nil {
		return nil, ref, key, fmt.Errorf("%s: %w", urlFrom, err)
	}
	return api, ref, key, nil
}

func (c *common) clusterOnce() func() (*Cluster, error) {
	var cl *Cluster
	var err error
	done := false
	return func() (*Cluster, error) {
		if !done {
			cl, err = Connect(c.kubeconfig, c.context)
			done = true
		}
		return cl, err
	}
}

// readTenant reads every user, with a progress line on stderr for tenants of more than a page.
func readTenant(ctx context.Context, api *cipherscale.Client, env Env) ([]cipherscale.User, error) {
	tty := false
	if f, ok := env.Stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	pages := 0
	shown := false
	progress := func(read, total int) {
		pages++
		if total <= cipherscale.MaxPageSize {
			return
		}
		switch {
		case tty:
			fmt.Fprintf(env.Stderr, "\rReading the tenant: %d of %d users", read, total)
			shown = true
		case pages%5 == 0 || read >= total:
			fmt.Fprintf(env.Stderr, "Reading the tenant: %d of %d users\n", read, total)
		}
	}
	users, err := api.ListUsersProgress(ctx, progress)
	if shown {
		fmt.Fprintln(env.Stderr)
	}
	return users, err
}

func runExport(ctx context.Context, args []string, env Env) (int, string, error) {
	fs := newFlagSet("export", env)
	var c common
	c.bind(fs)
	var dir string
	var memberships bool
	fs.StringVar(&dir, "o", "", "Write one file per object and a kustomization.yaml into this folder, instead of one YAML stream on stdout.")
	fs.StringVar(&dir, "output-dir", "", "Same as -o.")
	fs.BoolVar(&memberships, "memberships", false, "Also write one Additive CipherscaleGroupMembership per group (userRefs to the exported users), and leave spec.groups out of the users.")
	if err := fs.Parse(args); err != nil {
		return ExitError, "", err
	}
	if fs.NArg() > 0 {
		return ExitError, "", fmt.Errorf("export takes no arguments, got %q", fs.Args())
	}
	api, ref, key, err := c.connect(ctx, env, c.clusterOnce())
	if err != nil {
		return ExitError, key, err
	}
	users, err := readTenant(ctx, api, env)
	if err != nil {
		return ExitError, key, err
	}
	if n := len(users) - len(WithEmail(users)); n > 0 {
		fmt.Fprintf(env.Stderr, "Left out %d tenant users that have no email (a CipherscaleUser needs one)\n", n)
	}
	docs := Export(users, ExportOptions{Namespace: c.namespace, Tenant: ref, Memberships: memberships})
	if dir == "" {
		var b bytes.Buffer
		WriteStream(&b, docs)
		_, err := env.Stdout.Write(b.Bytes())
		return ExitOK, key, err
	}
	removed, err := WriteDir(dir, docs)
	if err != nil {
		return ExitError, key, err
	}
	for _, f := range removed {
		fmt.Fprintf(env.Stderr, "Removed %s: no longer in the tenant\n", filepath.Join(dir, f))
	}
	fmt.Fprintf(env.Stderr, "Wrote %d objects (%d users) and %s to %s\n", len(docs), len(users), kustomizationFile, dir)
	return ExitOK, key, nil
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runPlan(ctx context.Context, args []string, env Env) (int, string, error) {
	fs := newFlagSet("plan", env)
	var c common
	c.bind(fs)
	var files stringList
	var withCluster bool
	var defaultPolicy string
	fs.Var(&files, "f", "A manifest file or folder (repeatable). Without -f, the cluster's objects are planned.")
	fs.Var(&files, "filename", "Same as -f.")
	fs.BoolVar(&withCluster, "cluster", true, "With -f, compare with the cluster's objects too (as kubectl diff does): objects already there keep their recorded user, and the others still count.")
	fs.StringVar(&defaultPolicy, "default-deletion-policy", string(iamv1alpha1.DeletionPolicyDelete), "The spec.defaultDeletionPolicy of the objects' tenant, for objects being deleted that set none.")
	if err := fs.Parse(args); err != nil {
		return ExitError, "", err
	}
	if fs.NArg() > 0 {
		return ExitError, "", fmt.Errorf("plan takes no arguments, got %q (use -f)", fs.Args())
	}
	clusterOnce := c.clusterOnce()

	// The objects: the manifests over the cluster's.
	var objs []Object
	var show map[string]bool
	tenantNS := c.namespace
	if len(files) > 0 {
		var clusterObjs []Object
		ns := c.namespace
		if withCluster {
			cl, err := clusterOnce()
			switch {
			case err != nil && clientcmd.IsEmptyConfig(errors.Unwrap(err)):
				fmt.Fprintln(env.Stderr, "No kubeconfig: the manifests are compared with the tenant alone, as new objects")
			case err != nil:
				return ExitError, "", fmt.Errorf("%w (use --cluster=false to compare the manifests with the tenant alone)", err)
			default:
				if ns == "" {
					ns = cl.Namespace
				}
				clusterObjs, err = listObjects(ctx, cl, env)
				if errors.Is(err, ErrNoCRDs) {
					fmt.Fprintln(env.Stderr, "The cluster has no CipherscaleUser kind yet: the manifests are compared with the tenant alone, as new objects")
				} else if err != nil {
					return ExitError, "", fmt.Errorf("%w (use --cluster=false to compare the manifests with the tenant alone)", err)
				}
			}
		}
		if ns == "" {
			ns = "default"
		}
		if tenantNS == "" {
			tenantNS = ns
		}
		m, err := LoadManifests(files, ns)
		if err != nil {
			return ExitError, "", err
		}
		objs, show = Overlay(clusterObjs, m.Objects, env.Now().UnixNano())
	} else {
		cl, err := clusterOnce()
		if err != nil {
			return ExitError, "", err
		}
		if tenantNS == "" {
			tenantNS = cl.Namespace
		}
		if objs, err = listObjects(ctx, cl, env); err != nil {
			return ExitError, "", err
		}
		if c.namespace != "" {
			show = map[string]bool{}
			for _, o := range objs {
				if strings.Split(o.Key(), "/")[1] == c.namespace {
					show[o.Key()] = true
				}
			}
		}
	}

	api, ref, key, err := c.connect(ctx, env, clusterOnce)
	if err != nil {
		return ExitError, key, err
	}
	users, memberships, other := ForTenant(objs, ref, tenantNS)
	if other > 0 {
		fmt.Fprintf(env.Stderr, "Left out %d objects of other tenants\n", other)
	}
	tenantUsers, err := readTenant(ctx, api, env)
	if err != nil {
		return ExitError, key, err
	}
	in := Input{Users: users, Memberships: memberships, Show: show, Tenant: tenantUsers,
		DefaultDeletionPolicy: iamv1alpha1.DeletionPolicy(defaultPolicy)}
	// The trust rules the operator applies: the tenant object's, or, without one, the tenant's
	// default (nobody adopts or acts privileged), said on stderr.
	if c.trust != nil {
		in.Trust, in.TenantUsable = c.trust.Trust, c.trust.Usable
		if c.trust.Note != "" {
			fmt.Fprintln(env.Stderr, c.trust.Note)
		}
	} else {
		fmt.Fprintln(env.Stderr, DefaultTrustNote)
	}
	if in.Trust.PrivilegedGroups == nil {
		if in.GroupRoles, err = groupRoles(ctx, api, tenantUsers, groupsNamed(users, memberships, tenantUsers)); err != nil {
			return ExitError, key, err
		}
	}
	res := Plan(in)
	Render(env.Stdout, res)
	if _, changes, blocked := res.Counts(); changes > 0 || blocked > 0 {
		return ExitChanges, key, nil
	}
	return ExitOK, key, nil
}

// listObjects lists the objects of every namespace, or of the context's namespace when the
// caller may not list cluster-wide.
func listObjects(ctx context.Context, cl *Cluster, env Env) ([]Object, error) {
	objs, err := cl.Objects(ctx, "")
	if apierrors.IsForbidden(err) {
		fmt.Fprintf(env.Stderr, "Not allowed to list every namespace: comparing with namespace %s only\n", cl.Namespace)
		return cl.Objects(ctx, cl.Namespace)
	}
	return objs, err
}
