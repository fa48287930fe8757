package onboarding

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// exported returns the sample tenant's export as objects in the cluster: applied, adopted (a
// recorded id) and created at t0+i.
func exported(t *testing.T, tenant []cipherscale.User, opts ExportOptions) []Object {
	t.Helper()
	ids := map[string]string{}
	for _, u := range tenant {
		ids[u.Email] = u.ID
	}
	var out []Object
	for i, d := range Export(tenant, opts) {
		o := parse(t, d.YAML)
		ts := metav1.NewTime(time.Unix(1000+int64(i), 0))
		if o.User != nil {
			o.User.CreationTimestamp = ts
			o.User.Status.ID = ids[o.User.Spec.Email]
		} else {
			o.Membership.CreationTimestamp = ts
		}
		out = append(out, o)
	}
	return out
}

// runPlanOn plans for a tenant that trusts namespace ns (its spec.adoption and spec.privileged
// select it): the plans of a namespace the tenant does not trust are in trust_test.go.
func runPlanOn(objs []Object, tenant []cipherscale.User, show map[string]bool) (Result, string) {
	users, memberships, _ := ForTenant(objs, TenantRef{}, "ns")
	res := Plan(Input{Users: users, Memberships: memberships, Tenant: tenant, Show: show, Trust: plan.AllowAll()})
	var b bytes.Buffer
	Render(&b, res)
	return res, b.String()
}

func TestPlanOfAnUnchangedExportIsEmpty(t *testing.T) {
	for _, memberships := range []bool{false, true} {
		tenant := sampleTenant()
		res, out := runPlanOn(exported(t, tenant, ExportOptions{Memberships: memberships}), tenant, nil)
		if _, changes, blocked := res.Counts(); changes != 0 || blocked != 0 {
			t.Errorf("memberships=%v: %d changes, %d blocked:\n%s", memberships, changes, blocked, out)
		}
		if !strings.HasPrefix(out, "No changes: the tenant matches all ") {
			t.Errorf("memberships=%v: output\n%s", memberships, out)
		}
	}
}

func TestPlanSaysWhatTheOperatorWouldDo(t *testing.T) {
	find := func(objs []Object, prefix string) *iamv1alpha1.CipherscaleUser {
		for _, o := range objs {
			if o.User != nil && strings.HasPrefix(o.User.Name, prefix) {
				return o.User
			}
		}
		t.Fatalf("no user %s", prefix)
		return nil
	}
	tests := []struct {
		name  string
		edit  func(objs []Object) []Object
		want  []string // lines of the output, in order, before the summary
		exitC bool     // a change or a block
	}{
		{"a role added", func(objs []Object) []Object {
			u := find(objs, "kai-")
			*u.Spec.Roles = append(*u.Spec.Roles, billingID)
			return objs
		}, []string{
			"~ CipherscaleUser ns/" + UserName("kai@example.com") + " (kai@example.com): roles +1 -0",
			"    + role Billing: \"finance\" # team (" + billingID + ")",
		}, true},
		{"a user set inactive", func(objs []Object) []Object {
			find(objs, "kai-").Spec.Active = ptr(false)
			return objs
		}, []string{"~ CipherscaleUser ns/" + UserName("kai@example.com") + " (kai@example.com): deactivate"}, true},
		{"the owner set inactive", func(objs []Object) []Object {
			find(objs, "owner-").Spec.Active = ptr(false)
			return objs
		}, []string{"! CipherscaleUser ns/" + UserName("owner@example.com") + " (owner@example.com): OwnerProtected: the tenant owner is read-only to the operator, and the spec differs from the owner's state (deactivate)"}, true},
		{"a file removed is not a deletion", func(objs []Object) []Object {
			return objs[1:] // Jane's object
		}, []string{"  1 tenant users are declared by no object and are left alone: jane.smith@example.com"}, false},
		{"a new object adopts", func(objs []Object) []Object {
			find(objs, "sam-").Status.ID = ""
			return objs
		}, []string{"~ CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): adopt tenant user u-sam"}, true},
		{"adoptionPolicy Never refuses", func(objs []Object) []Object {
			u := find(objs, "sam-")
			u.Status.ID = ""
			u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
			return objs
		}, []string{"! CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): AlreadyExists: the tenant already has a user with this email (u-sam) and adoptionPolicy is Never"}, true},
		{"a second object for an email conflicts", func(objs []Object) []Object {
			dup := find(objs, "sam-").DeepCopy()
			dup.Name = "sam-again"
			dup.CreationTimestamp = metav1.NewTime(time.Unix(5000, 0))
			return append(objs, Object{User: dup})
		}, []string{"! CipherscaleUser ns/sam-again (sam@example.com): EmailConflict: another CipherscaleUser manages this email (it recorded the tenant user's id, or was created earlier); this object would do nothing"}, true},
		{"a new person is created and invited, then brought to the spec", func(objs []Object) []Object {
			return append(objs, Object{User: &iamv1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new", CreationTimestamp: metav1.NewTime(time.Unix(9000, 0))},
				Spec:       iamv1alpha1.CipherscaleUserSpec{Email: "new@example.com", FirstName: ptr("New"), Roles: &[]string{adminID}, Groups: &[]string{engID}},
			}})
		}, []string{
			"~ CipherscaleUser ns/new (new@example.com): create and invite; then profile (firstName), roles +1 -0",
			"    + group Engineering (" + engID + ")",
			"    + role Admin (" + adminID + ")",
		}, true},
		{"a group dropped from a user's list", func(objs []Object) []Object {
			*find(objs, "sam-").Spec.Groups = []string{}
			return objs
		}, []string{
			"~ CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): groups +0 -1",
			"    - group Engineering (" + engID + ")",
		}, true},
		{"a recorded user with another email is reported, never swapped", func(objs []Object) []Object {
			find(objs, "sam-").Annotations = map[string]string{annotationUserID: "u-kai"}
			return objs
		}, []string{"! CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): EmailMismatch: the tenant user u-kai recorded in the annotation cipherscale.com/user-id has another email; the operator never swaps one user for another"}, true},
		{"a recorded user gone while another has the email is not adopted", func(objs []Object) []Object {
			find(objs, "sam-").Status.ID = "u-gone"
			return objs
		}, []string{"! CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): AlreadyExists: the tenant user u-gone this object recorded is gone, and another user (u-sam) now has the email"}, true},
		{"an object being deleted with the default policy", func(objs []Object) []Object {
			now := metav1.NewTime(time.Unix(9000, 0))
			u := find(objs, "kai-")
			u.DeletionTimestamp = &now
			u.Spec.DeletionPolicy = ""
			return objs
		}, []string{"~ CipherscaleUser ns/" + UserName("kai@example.com") + " (kai@example.com): delete tenant user u-kai"}, true},
		{"an Orphan object being deleted", func(objs []Object) []Object {
			now := metav1.NewTime(time.Unix(9000, 0))
			find(objs, "kai-").DeletionTimestamp = &now
			return objs
		}, []string{"~ CipherscaleUser ns/" + UserName("kai@example.com") + " (kai@example.com): orphan: leave tenant user u-kai in the tenant (deletionPolicy Orphan)"}, true},
		{"an Authoritative membership: the pairs of users with a CipherscaleUser are written by their passes", func(objs []Object) []Object {
			return append(objs, Object{Membership: &iamv1alpha1.CipherscaleGroupMembership{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "eng", CreationTimestamp: metav1.NewTime(time.Unix(9000, 0))},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: engID, Policy: iamv1alpha1.MembershipPolicyAuthoritative,
					Members: []iamv1alpha1.Member{{Email: "kai@example.com"}, {Email: "sam@example.com"}}},
			}})
		}, []string{
			"~ CipherscaleUser ns/" + UserName("Jane.Smith@example.com") + " (Jane.Smith@example.com): groups +0 -1",
			"    - group Engineering (" + engID + ")",
			"~ CipherscaleUser ns/" + UserName("kai@example.com") + " (kai@example.com): groups +1 -0",
			"    + group Engineering (" + engID + ")",
		}, true},
		{"an Authoritative membership removes an undeclared member", func(objs []Object) []Object {
			var out []Object
			for _, o := range objs {
				if o.User == nil || !strings.HasPrefix(o.User.Name, "jane-") {
					out = append(out, o)
				}
			}
			return append(out, Object{Membership: &iamv1alpha1.CipherscaleGroupMembership{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "eng", CreationTimestamp: metav1.NewTime(time.Unix(9000, 0))},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: engID, Policy: iamv1alpha1.MembershipPolicyAuthoritative,
					Members: []iamv1alpha1.Member{{Email: "sam@example.com"}}},
			}})
		}, []string{
			"~ CipherscaleGroupMembership ns/eng: members +0 -1 of group Engineering (" + engID + ")",
			"    - member jane.smith@example.com",
			"  1 tenant users are declared by no object and are left alone: jane.smith@example.com",
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := sampleTenant()
			// Jane's groups are left unmanaged here, so that an Authoritative membership may
			// remove her: her own spec.groups would otherwise declare the pair.
			objs := exported(t, tenant, ExportOptions{})
			find(objs, "jane-").Spec.Groups = nil
			res, out := runPlanOn(tt.edit(objs), tenant, nil)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			body := lines[:len(lines)-1]
			if len(tt.want) == 0 && len(body) == 0 {
				body = nil
			}
			if strings.Join(body, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("output:\n%s\nwant the lines:\n%s", out, strings.Join(tt.want, "\n"))
			}
			_, changes, blocked := res.Counts()
			if (changes+blocked > 0) != tt.exitC {
				t.Errorf("changes %d, blocked %d; want a change or block: %v", changes, blocked, tt.exitC)
			}
		})
	}
}

func TestPlanNeverGuessesBetweenEmailsDifferingInCase(t *testing.T) {
	tenant := append(sampleTenant(), cipherscale.User{ID: "u-sam2", Email: "SAM@example.com", Status: cipherscale.StatusActive})
	objs := exported(t, sampleTenant(), ExportOptions{})
	for _, o := range objs {
		if o.User.Spec.Email == "sam@example.com" {
			o.User.Status.ID = ""
		}
	}
	_, out := runPlanOn(objs, tenant, nil)
	want := "! CipherscaleUser ns/" + UserName("sam@example.com") + " (sam@example.com): AmbiguousEmail: several tenant users have this email, differing only in case; the operator never picks one\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output:\n%s\nwant first:\n%s", out, want)
	}
}

func TestPlanNeverChangesItsInput(t *testing.T) {
	tenant := sampleTenant()
	before := sampleTenant()
	objs := exported(t, tenant, ExportOptions{})
	for _, o := range objs {
		if o.User != nil {
			o.User.Spec.Active = ptr(false)
			o.User.Spec.Roles = &[]string{}
		}
	}
	runPlanOn(objs, tenant, nil)
	for i := range tenant {
		if tenant[i].Status != before[i].Status || len(tenant[i].Roles) != len(before[i].Roles) {
			t.Errorf("Plan changed the tenant it was given: %+v", tenant[i])
		}
	}
}
