package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestOneDecisionTwoReaders gives the operator's reader (the manager's cache, through its field
// indexes) and `kubectl cipherscale plan`'s (objects in memory) the same world, and compares
// every decision the membership rule makes over it: who owns each email, each user's group
// changes and the privileged groups it is refused, and the facts and outcome of every (email,
// group) pair. The world has trust refusals (a namespace that may not adopt, act on another
// namespace's user, be Authoritative or manage a privileged group; a namespace that may not use
// the tenant), membership-declared groups, the tenant owner and an email conflict.
func TestOneDecisionTwoReaders(t *testing.T) {
	ctx := context.Background()
	prod := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "prod"}
	key := tenant.ClusterKey("prod")
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "yes"}}
	nsLabels := map[string]map[string]string{"a": {"team": "yes", "trusted": "yes"}, "b": {"team": "yes"}, "x": {}, "y": {"trusted": "yes"}}
	trust := plan.TenantTrust(iamv1alpha1.KindClusterCipherscaleTenant, "",
		&iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"trusted": "yes"}}},
		&iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"trusted": "yes"}}, Groups: &[]string{"g-admin"}},
		func(ns string) map[string]string { return nsLabels[ns] })

	at := func(i int) metav1.Time { return metav1.NewTime(time.Unix(1000+int64(i), 0)) }
	ready := func(reason string) []metav1.Condition {
		return []metav1.Condition{{Type: iamv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason}}
	}
	user := func(i int, ns, name, email, id string, groups *[]string) *iamv1alpha1.CipherscaleUser {
		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("uid-" + ns + "-" + name), CreationTimestamp: at(i)},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: email, TenantRef: prod, Groups: groups},
		}
		u.Status.ID = id
		return u
	}
	membership := func(i int, ns, name, group string, policy iamv1alpha1.MembershipPolicy, members ...iamv1alpha1.Member) *iamv1alpha1.CipherscaleGroupMembership {
		return &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("uid-m-" + ns + "-" + name), CreationTimestamp: at(i)},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Policy: policy, Members: members, TenantRef: prod},
		}
	}
	squatter := user(2, "b", "squatter", "erin@example.com", "", nil)
	squatter.Status.Conditions = ready(iamv1alpha1.ReasonAdoptionNotAllowed)
	users := []*iamv1alpha1.CipherscaleUser{
		user(1, "a", "alice", "alice@example.com", "u-alice", nil),
		user(3, "b", "bob", "Bob@Example.com", "u-bob", &[]string{"g-eng"}),
		user(4, "b", "bob-again", "bob@example.com", "", &[]string{"g-ops"}), // EmailConflict
		user(5, "b", "carol", "carol@example.com", "u-carol", &[]string{"g-admin"}),
		user(6, "x", "xena", "xena@example.com", "u-xena", nil), // InvalidTenant
		user(7, "a", "owner", "owner@example.com", "u-owner", &[]string{}),
		user(8, "a", "erin", "erin@example.com", "", nil), // the older squatter was refused
		squatter,
	}
	memberships := []*iamv1alpha1.CipherscaleGroupMembership{
		membership(10, "a", "eng", "g-eng", iamv1alpha1.MembershipPolicyAuthoritative, byRef("alice"), byMail("dave@example.com")),
		membership(11, "b", "eng", "g-eng", iamv1alpha1.MembershipPolicyAdditive, byMail("alice@example.com"), byRef("bob"), byMail("frank@example.com")),
		membership(12, "b", "ops", "g-ops", iamv1alpha1.MembershipPolicyAuthoritative, byRef("bob"), byRef("carol")), // may not be Authoritative
		membership(13, "x", "eng", "g-eng", iamv1alpha1.MembershipPolicyAdditive, byMail("bob@example.com")),         // may not use the tenant
		membership(14, "b", "admins", "g-admin", iamv1alpha1.MembershipPolicyAdditive, byRef("bob")),                 // privileged group
		// y is trusted, but the tenant's namespaceSelector does not select it: its memberships
		// declare nobody and own no scope.
		membership(16, "y", "eng", "g-eng", iamv1alpha1.MembershipPolicyAdditive, byMail("grace@example.com")),
		membership(9, "y", "old", "g-old", iamv1alpha1.MembershipPolicyAuthoritative, byMail("grace@example.com")),
		membership(15, "a", "ops", "g-ops", iamv1alpha1.MembershipPolicyAdditive, byMail("carol@example.com"), byRef("owner")),
	}
	live := map[string]*cipherscale.User{
		"alice@example.com": {ID: "u-alice", Email: "alice@example.com", Groups: []cipherscale.Group{{ID: "g-ops"}}},
		"bob@example.com":   {ID: "u-bob", Email: "bob@example.com", Groups: []cipherscale.Group{{ID: "g-old"}, {ID: "g-admin"}}},
		"carol@example.com": {ID: "u-carol", Email: "carol@example.com"},
		"xena@example.com":  {ID: "u-xena", Email: "xena@example.com", Groups: []cipherscale.Group{{ID: "g-eng"}}},
		"owner@example.com": {ID: "u-owner", Email: "owner@example.com", IsOwner: true, Groups: []cipherscale.Group{{ID: "g-eng"}}},
		"erin@example.com":  {ID: "u-erin", Email: "erin@example.com"},
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := iamv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{&iamv1alpha1.ClusterCipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Name: "prod"},
		Spec:       iamv1alpha1.ClusterCipherscaleTenantSpec{NamespaceSelector: selector},
	}}
	for ns, l := range nsLabels {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: l}})
	}
	var userVals []iamv1alpha1.CipherscaleUser
	var memVals []iamv1alpha1.CipherscaleGroupMembership
	for _, u := range users {
		objs = append(objs, u.DeepCopy())
		userVals = append(userVals, *u)
	}
	for _, m := range memberships {
		objs = append(objs, m.DeepCopy())
		memVals = append(memVals, *m)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&iamv1alpha1.CipherscaleUser{}, indexUserEmail, userEmailKeys).
		WithIndex(&iamv1alpha1.CipherscaleGroupMembership{}, indexMembershipGroup, membershipGroupKeys).
		WithIndex(&iamv1alpha1.CipherscaleGroupMembership{}, indexMembershipMember, membershipMemberKeys).
		WithObjects(objs...).WithStatusSubresource(&iamv1alpha1.CipherscaleUser{}).Build()

	mem := decide.NewMemory(userVals, memVals)
	mem.Usable = plan.SelectorRule(selector, func(ns string) map[string]string { return nsLabels[ns] }).Allows
	readers := map[string]decide.World{
		"cache":  world{kube: kube, trust: trust, tenant: key}.shared(),
		"memory": {R: mem, Trust: trust},
	}

	emails := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com", "frank@example.com", "grace@example.com", "owner@example.com", "xena@example.com"}
	groups := []string{"g-eng", "g-ops", "g-admin", "g-old"}
	plans := map[string][]string{}
	for name, w := range readers {
		var out []string
		say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
		for _, u := range users {
			owner, err := w.EmailOwnerFor(ctx, u, u.Status.ID != "")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			say("%s/%s owner=%s", u.Namespace, u.Name, objName(owner))
			l := live[cipherscale.NormalizeEmail(u.Spec.Email)]
			if l == nil {
				continue
			}
			add, remove, err := w.UserGroupChanges(ctx, u, l)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			refused, err := w.RefusedGroups(ctx, u.Namespace, u.Spec.Groups, remove)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			say("%s/%s add=%v remove=%v refused=%v", u.Namespace, u.Name, add, remove, refused)
		}
		for _, m := range memberships {
			members, err := w.ResolveMembers(ctx, m)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, r := range members {
				say("%s/%s member %q user=%s", m.Namespace, m.Name, r.Email, objName(r.User))
			}
		}
		for _, e := range emails {
			owner, err := w.EmailOwner(ctx, e)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			say("%s owned by %s", e, objName(owner))
			for _, g := range groups {
				for _, present := range []bool{false, true} {
					f, err := w.PairFacts(ctx, e, g, present, "")
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					say("%s %s present=%v %+v -> %v", e, g, present, f, plan.DecidePair(f))
				}
			}
		}
		plans[name] = out
	}
	if a, b := strings.Join(plans["cache"], "\n"), strings.Join(plans["memory"], "\n"); a != b {
		t.Fatalf("the two readers decide differently:\ncache:\n%s\n\nmemory:\n%s", a, b)
	}

	// And the decisions are those of the trust rules: a sample that a reader ignoring them
	// would get wrong.
	got := strings.Join(plans["cache"], "\n")
	for _, want := range []string{
		// The email's owner is the one that recorded the id; the refused squatter owns nothing.
		"b/bob-again owner=b/bob",
		"erin@example.com owned by a/erin",
		// bob's spec.groups and membership b/eng add g-eng; b/admins (a privileged group b may
		// not manage) declares nothing, and g-admin, which bob's spec.groups does not name, is
		// privileged: b may not take him out of it.
		"b/bob add=[g-eng] remove=[g-admin g-old] refused=[g-admin]",
		// carol asks a privileged group from a namespace that may not manage it.
		"b/carol add=[g-admin g-ops] remove=[] refused=[g-admin]",
		// b/eng may not act on alice, whom namespace a manages: only a/eng declares her.
		"alice@example.com g-eng present=false {Present:false DeclaredBy:[CipherscaleGroupMembership/a/eng] UserAuthoritative:false GroupAuthoritative:true} -> add",
		// b/ops may not be Authoritative: g-ops has no authoritative scope. a/ops, of a
		// privileged namespace, may act on carol, whom namespace b manages.
		"carol@example.com g-ops present=false {Present:false DeclaredBy:[CipherscaleGroupMembership/a/ops] UserAuthoritative:true GroupAuthoritative:false} -> add",
		// y may not use the tenant: y/eng declares nobody, and y/old owns no scope.
		"grace@example.com g-eng present=false {Present:false DeclaredBy:[] UserAuthoritative:false GroupAuthoritative:true} -> keep",
		"grace@example.com g-old present=true {Present:true DeclaredBy:[] UserAuthoritative:false GroupAuthoritative:false} -> keep",
		// x may not use the tenant: x/eng declares nobody.
		"xena@example.com g-eng present=true {Present:true DeclaredBy:[] UserAuthoritative:false GroupAuthoritative:true} -> remove",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing decision %q in:\n%s", want, got)
		}
	}
}

func byRef(name string) iamv1alpha1.Member {
	return iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: name}}
}

func byMail(email string) iamv1alpha1.Member { return iamv1alpha1.Member{Email: email} }

func objName(o *iamv1alpha1.CipherscaleUser) string {
	if o == nil {
		return "-"
	}
	return o.GetNamespace() + "/" + o.GetName()
}
