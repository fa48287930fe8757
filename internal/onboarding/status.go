package onboarding

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// ExitAttention is status's exit code when something needs a person (plan's ExitChanges).
const ExitAttention = ExitChanges

// DefaultTenant is the tenant of objects that name none.
var DefaultTenant = TenantRef{Kind: KindClusterTenant, Name: "default"}

// statusShow is how many names status prints of each group of objects.
const statusShow = 5

// TenantState is what status shows of one tenant: its object (nil when no object has its name)
// and the objects that use it.
type TenantState struct {
	Ref       TenantRef
	Namespace string // of a CipherscaleTenant
	Found     bool
	Spec      iamv1alpha1.TenantSettings
	Status    iamv1alpha1.TenantStatus
	Objects   []StatusObject
}

// StatusObject is one CipherscaleUser or membership, summarized.
type StatusObject struct {
	Kind, Namespace, Name string
	// Condition is Ready, Reconciling or Stalled (kstatus); Reason that condition's reason.
	Condition, Reason string
}

// Label is the tenant as the metrics and the other commands name it: KIND/NAME, or
// CipherscaleTenant/NAMESPACE/NAME.
func (t *TenantState) Label() string {
	if t.Ref.Kind == KindNamespacedTenant {
		return t.Ref.Kind + "/" + t.Namespace + "/" + t.Ref.Name
	}
	return t.Ref.Kind + "/" + t.Ref.Name
}

// ReadStatus reads the tenant objects, CipherscaleUsers and memberships of the cluster (those of
// namespace when set) and groups the objects by tenant. It reads the cluster only.
func ReadStatus(ctx context.Context, r client.Reader, namespace string) ([]*TenantState, error) {
	byKey := map[string]*TenantState{}
	var order []string
	add := func(t *TenantState) *TenantState {
		k := t.Label()
		if got, ok := byKey[k]; ok {
			return got
		}
		byKey[k] = t
		order = append(order, k)
		return t
	}
	lists := []struct {
		kind       string
		namespaced bool
	}{{KindClusterTenant, false}, {KindNamespacedTenant, true}}
	for _, l := range lists {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(iamv1alpha1.GroupVersion.WithKind(l.kind + "List"))
		var opts []client.ListOption
		if l.namespaced && namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := r.List(ctx, list, opts...); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				return nil, ErrNoCRDs
			}
			return nil, fmt.Errorf("listing %ss: %w", l.kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			t := &TenantState{Ref: TenantRef{Kind: l.kind, Name: u.GetName()}, Found: true}
			if l.namespaced {
				t.Namespace = u.GetNamespace()
			}
			var obj struct {
				Spec   iamv1alpha1.TenantSettings `json:"spec"`
				Status iamv1alpha1.TenantStatus   `json:"status"`
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
				return nil, fmt.Errorf("%s: %w", t.Label(), err)
			}
			t.Spec, t.Status = obj.Spec, obj.Status
			add(t)
		}
	}
	var cl Cluster
	cl.Client = r
	objs, err := cl.Objects(ctx, namespace)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		ref := o.Tenant
		if ref.Kind == "" {
			ref = DefaultTenant
		}
		so := StatusObject{}
		var conds []metav1.Condition
		if o.User != nil {
			so.Kind, so.Namespace, so.Name, conds = "CipherscaleUser", o.User.Namespace, o.User.Name, o.User.Status.Conditions
		} else {
			so.Kind, so.Namespace, so.Name, conds = "CipherscaleGroupMembership", o.Membership.Namespace, o.Membership.Name, o.Membership.Status.Conditions
		}
		so.Condition, so.Reason = summarizeConditions(conds)
		t := &TenantState{Ref: ref}
		if ref.Kind == KindNamespacedTenant {
			t.Namespace = so.Namespace
		}
		t = add(t)
		t.Objects = append(t.Objects, so)
	}
	sort.Strings(order)
	out := make([]*TenantState, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	return out, nil
}

// summarizeConditions is the kstatus state of an object: Stalled when Stalled is True, Ready
// when Ready is True, else Reconciling; with that condition's reason.
func summarizeConditions(cs []metav1.Condition) (string, string) {
	if c := meta.FindStatusCondition(cs, iamv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return iamv1alpha1.ConditionStalled, orUnknown(c.Reason)
	}
	ready := meta.FindStatusCondition(cs, iamv1alpha1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionTrue {
		return iamv1alpha1.ConditionReady, orUnknown(ready.Reason)
	}
	if c := meta.FindStatusCondition(cs, iamv1alpha1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return iamv1alpha1.ConditionReconciling, orUnknown(c.Reason)
	}
	if ready != nil {
		return iamv1alpha1.ConditionReconciling, orUnknown(ready.Reason)
	}
	return iamv1alpha1.ConditionReconciling, "NotObservedYet"
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// shortKind is the kubectl short name of a kind.
func shortKind(kind string) string {
	switch kind {
	case KindClusterTenant:
		return "ccst"
	case KindNamespacedTenant:
		return "cst"
	case "CipherscaleUser":
		return "csu"
	default:
		return "csgm"
	}
}

// tenantFlag is the --tenant value naming t.
func (t *TenantState) tenantFlag() string {
	s := "--tenant " + t.Ref.Kind + "/" + t.Ref.Name
	if t.Ref.Kind == KindNamespacedTenant {
		s += " -n " + t.Namespace
	}
	return s
}

// NeedsPerson lists what about t needs a person; empty when everything is Ready.
func (t *TenantState) NeedsPerson() []string {
	var out []string
	// A tenant that has no object is judged by its objects alone: the operator refuses them
	// (InvalidTenant) when it cannot use the tenant.
	if c, r := summarizeConditions(t.Status.Conditions); t.Found && c != iamv1alpha1.ConditionReady {
		out = append(out, "tenant "+c+" ("+r+")")
	}
	if b := t.Status.RemovalBudget; b != nil && b.Waiting > 0 {
		out = append(out, counted(int(b.Waiting), "removal waiting", "removals waiting"))
	}
	if t.policy() == iamv1alpha1.UndeclaredUsersReport && t.Status.Undeclared != nil && t.Status.Undeclared.Count > 0 {
		out = append(out, counted(int(t.Status.Undeclared.Count), "undeclared user", "undeclared users"))
	}
	notReady := 0
	for _, o := range t.Objects {
		if o.Condition != iamv1alpha1.ConditionReady {
			notReady++
		}
	}
	if notReady > 0 {
		out = append(out, counted(notReady, "object not Ready", "objects not Ready"))
	}
	return out
}

func (t *TenantState) policy() iamv1alpha1.UndeclaredUsersPolicy {
	if t.Spec.UndeclaredUsers == nil || t.Spec.UndeclaredUsers.Policy == "" {
		return iamv1alpha1.UndeclaredUsersIgnore
	}
	return t.Spec.UndeclaredUsers.Policy
}

// objectGroup is the objects of one condition and reason.
type objectGroup struct {
	condition, reason string
	objects           []StatusObject
}

func groupNotReady(objs []StatusObject) []objectGroup {
	idx := map[[2]string]int{}
	var out []objectGroup
	for _, o := range objs {
		if o.Condition == iamv1alpha1.ConditionReady {
			continue
		}
		k := [2]string{o.Condition, o.Reason}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, objectGroup{condition: o.Condition, reason: o.Reason})
		}
		out[i].objects = append(out[i].objects, o)
	}
	// Stalled first, then the largest groups.
	sort.SliceStable(out, func(i, j int) bool {
		si, sj := out[i].condition == iamv1alpha1.ConditionStalled, out[j].condition == iamv1alpha1.ConditionStalled
		if si != sj {
			return si
		}
		if len(out[i].objects) != len(out[j].objects) {
			return len(out[i].objects) > len(out[j].objects)
		}
		return out[i].reason < out[j].reason
	})
	for _, g := range out {
		sort.Slice(g.objects, func(i, j int) bool { return objName(g.objects[i]) < objName(g.objects[j]) })
	}
	return out
}

func objName(o StatusObject) string {
	return shortKind(o.Kind) + " " + o.Namespace + "/" + o.Name
}

// WriteStatus prints one screen for t. With reason set, it lists every object not Ready with
// that reason instead of the first few.
func WriteStatus(w io.Writer, t *TenantState, reason string) {
	cond, why := "", ""
	var msg *metav1.Condition
	if t.Found {
		cond, why = summarizeConditions(t.Status.Conditions)
		// The message of the condition that decides the state (Stalled's when stalled).
		msg = meta.FindStatusCondition(t.Status.Conditions, cond)
		if msg == nil || msg.Message == "" {
			msg = meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionReady)
		}
	}
	switch {
	case !t.Found:
		fmt.Fprintf(w, "%s: no such tenant object; %d objects name it\n", t.Label(), len(t.Objects))
	case cond == iamv1alpha1.ConditionReady:
		fmt.Fprintf(w, "%s: Ready\n", t.Label())
	default:
		fmt.Fprintf(w, "%s: not Ready (%s, %s)\n", t.Label(), cond, why)
		if msg != nil && msg.Message != "" {
			fmt.Fprintf(w, "  %s\n", msg.Message)
		}
	}
	st := t.Status
	if t.Found {
		if u := st.Users; u != nil {
			declared := ""
			if st.Declared != nil {
				declared = fmt.Sprintf("; %d declared", *st.Declared)
			}
			fmt.Fprintf(w, "  Users:       %d: %d active, %d pending, %d inactive%s\n", u.Total, u.Active, u.Pending, u.Inactive, declared)
		}
		p := t.policy()
		switch {
		case p == iamv1alpha1.UndeclaredUsersIgnore:
			fmt.Fprintf(w, "  Undeclared:  not counted (policy Ignore)\n")
		case st.Undeclared != nil:
			fmt.Fprintf(w, "  Undeclared:  %d (policy %s)\n", st.Undeclared.Count, p)
			if st.Undeclared.Count > 0 {
				fmt.Fprintf(w, "               kubectl get %s %s -o jsonpath='{.status.undeclared.emails}'\n", shortKind(t.Ref.Kind), t.nameArgs())
			}
		}
		if b := st.RemovalBudget; b != nil {
			per := "no limit"
			if b.PerHour > 0 {
				per = fmt.Sprintf("%d per hour", b.PerHour)
			}
			fmt.Fprintf(w, "  Removals:    %d spent in the last hour (budget %s); %d waiting", b.Spent, per, b.Waiting)
			if b.Allowance > 0 {
				fmt.Fprintf(w, "; %d allowed by a person not yet spent", b.Allowance)
			}
			fmt.Fprintln(w)
			if b.Waiting > 0 {
				fmt.Fprintf(w, "               to let them through, once: kubectl annotate %s %s %s=%d --overwrite\n",
					shortKind(t.Ref.Kind), t.nameArgs(), iamv1alpha1.AnnotationAllowRemovals, b.Waiting)
			}
		}
	}
	counts := map[string]int{}
	for _, o := range t.Objects {
		counts[o.Condition]++
	}
	fmt.Fprintf(w, "  Objects:     %d: %d Ready, %d Reconciling, %d Stalled\n", len(t.Objects),
		counts[iamv1alpha1.ConditionReady], counts[iamv1alpha1.ConditionReconciling], counts[iamv1alpha1.ConditionStalled])
	for _, g := range groupNotReady(t.Objects) {
		if reason != "" && g.reason != reason {
			continue
		}
		fmt.Fprintf(w, "    %s %s: %d\n", g.condition, g.reason, len(g.objects))
		show := len(g.objects)
		if reason == "" {
			show = min(show, statusShow)
		}
		for _, o := range g.objects[:show] {
			fmt.Fprintf(w, "      %s\n", objName(o))
		}
		if rest := len(g.objects) - show; rest > 0 {
			fmt.Fprintf(w, "      and %d more: kubectl cipherscale status %s --reason %s\n", rest, t.tenantFlag(), g.reason)
		}
	}
}

// nameArgs are kubectl's arguments naming the tenant object.
func (t *TenantState) nameArgs() string {
	if t.Ref.Kind == KindNamespacedTenant {
		return t.Ref.Name + " -n " + t.Namespace
	}
	return t.Ref.Name
}

// runStatus is `kubectl cipherscale status`.
func runStatus(ctx context.Context, args []string, env Env) (int, string, error) {
	fs := newFlagSet("status", env)
	var tenantFlag, namespace, kubeconfig, kctx, reason string
	fs.StringVar(&tenantFlag, "tenant", "", "Show only this tenant, KIND/NAME (ClusterCipherscaleTenant/prod, CipherscaleTenant/qa with --namespace).")
	fs.StringVar(&namespace, "namespace", "", "Read only this namespace's objects and CipherscaleTenants (default: every namespace; a CipherscaleTenant given with --tenant: the kubeconfig's namespace).")
	fs.StringVar(&namespace, "n", "", "Short for --namespace.")
	fs.StringVar(&reason, "reason", "", "List every object not Ready with this reason, not only the first few.")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path of the kubeconfig (default $KUBECONFIG or ~/.kube/config).")
	fs.StringVar(&kctx, "context", "", "The kubeconfig context to use.")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, `Usage: kubectl cipherscale status [--tenant KIND/NAME] [--namespace NS] [--reason REASON]

One screen per tenant: Ready and why not, users by state, undeclared users, the removal budget and
what waits for it, and the objects not Ready grouped by reason. It reads the cluster only, never
the Cipherscale API. Exit status: 0 everything is Ready, 2 something needs a person, 1 error.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return ExitError, "", err
	}
	if fs.NArg() > 0 {
		return ExitError, "", fmt.Errorf("status takes no arguments, got %q", fs.Args())
	}
	var want *TenantRef
	if tenantFlag != "" {
		ref, err := ParseTenantRef(tenantFlag)
		if err != nil {
			return ExitError, "", err
		}
		want = &ref
	}
	cl, err := Connect(kubeconfig, kctx)
	if err != nil {
		return ExitError, "", err
	}
	if want != nil && want.Kind == KindNamespacedTenant && namespace == "" {
		namespace = cl.Namespace
	}
	tenants, err := ReadStatus(ctx, cl.Client, namespace)
	if err != nil {
		if errors.Is(err, ErrNoCRDs) {
			return ExitError, "", errors.New("the cluster does not know the operator's kinds (are its CRDs installed?)")
		}
		return ExitError, "", err
	}
	var shown []*TenantState
	for _, t := range tenants {
		if want != nil && (t.Ref != *want || (want.Kind == KindNamespacedTenant && t.Namespace != namespace)) {
			continue
		}
		shown = append(shown, t)
	}
	if want != nil && (len(shown) == 0 || !shown[0].Found) {
		return ExitError, "", fmt.Errorf("no tenant object %s", tenantFlag)
	}
	if len(shown) == 0 {
		fmt.Fprintln(env.Stdout, "No tenant objects and no CipherscaleUsers or memberships.")
		return ExitOK, "", nil
	}
	code := ExitOK
	var attention []string
	for i, t := range shown {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		WriteStatus(env.Stdout, t, reason)
		if n := t.NeedsPerson(); len(n) > 0 {
			code = ExitAttention
			attention = append(attention, t.Label()+": "+strings.Join(n, ", "))
		}
	}
	fmt.Fprintln(env.Stdout)
	if code == ExitOK {
		fmt.Fprintln(env.Stdout, "Everything is Ready.")
	} else {
		fmt.Fprintln(env.Stdout, "Needs a person:")
		for _, a := range attention {
			fmt.Fprintln(env.Stdout, "  "+a)
		}
	}
	return code, "", nil
}

// counted says n of something: "1 undeclared user", "2 undeclared users".
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
