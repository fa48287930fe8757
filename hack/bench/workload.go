package main

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// The mixed workload. Users are user-00001 .. user-N; every one declares a profile (firstName,
// lastName), the role Bench and the group Bench, so spec.groups is set on all of them (each
// user is an authoritative scope for its own groups).
//
//   - Odd-numbered users already exist in the tenant (seeded through /_sim/users, so the operator
//     adopts them); even-numbered users are new. The adopted ones are seeded in four variants,
//     one after the other: already as declared; another firstName; no role and no group; another
//     name, the role Legacy instead of Bench and the group Legacy instead of Bench.
//   - Every block of 100 users (k = 0, 1, ...) has one CipherscaleGroupMembership team-k on its
//     own group Team k: Additive for even k, Authoritative for odd k. It declares, by userRef,
//     the first 8 users of the block (4 adopted, 4 new) and, by email, one tenant user that no
//     CipherscaleUser manages (member-k, seeded). For Authoritative blocks, user 100k+9
//     (adopted) is seeded in Team k although nothing declares it there: both its own spec.groups
//     and the membership's policy say it must leave.
//
// Under the membership rule (internal/plan/membership.go) this converges: a pair declared by a
// membership is kept although the user's spec.groups does not list it, and a pair nothing
// declares is removed from an authoritative scope.

const (
	blockSize   = 100
	refsInBlock = 8
	strayInBlk  = 9
	emailDomain = "bench.example.com"
	namespace   = "default"
)

// ids are the tenant's roles and groups, created in the simulator before the run.
type ids struct {
	role, legacyRole   string
	group, legacyGroup string
	teams              []string
}

func userName(i int) string    { return fmt.Sprintf("user-%05d", i) }
func userEmail(i int) string   { return fmt.Sprintf("user-%05d@%s", i, emailDomain) }
func memberEmail(k int) string { return fmt.Sprintf("member-%04d@%s", k, emailDomain) }
func firstName(i int) string   { return fmt.Sprintf("First%d", i) }
func adopted(i int) bool       { return i%2 == 1 }
func variant(i int) int        { return ((i - 1) / 2) % 4 }
func blocks(n int) int         { return (n + blockSize - 1) / blockSize }
func authoritative(k int) bool { return k%2 == 1 }
func strayOf(k, n int) (int, bool) {
	i := k*blockSize + strayInBlk
	return i, authoritative(k) && i <= n && adopted(i)
}

// tenantUser is one user of the tenant: as seeded (nil for a new one) and as declared.
type tenantUser struct {
	email   string
	managed bool
	seed    *simulator.UserSeed
	// declared state; names and roles only for managed users.
	first, last string
	roles       []string
	groups      map[string]bool // spec.groups plus memberships' declarations
	specGroups  bool
}

type workload struct {
	n           int
	ids         ids
	seeds       []simulator.UserSeed
	users       []*iamv1alpha1.CipherscaleUser
	memberships []*iamv1alpha1.CipherscaleGroupMembership
	tenant      []*tenantUser
}

func newWorkload(n int, id ids) *workload {
	w := &workload{n: n, ids: id}
	byEmail := map[string]*tenantUser{}
	for i := 1; i <= n; i++ {
		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: userName(i)},
			Spec: iamv1alpha1.CipherscaleUserSpec{
				Email:     userEmail(i),
				FirstName: ptr(firstName(i)), LastName: ptr("Bench"),
				Roles: &[]iamv1alpha1.ID{id.role}, Groups: &[]iamv1alpha1.ID{id.group},
			},
		}
		w.users = append(w.users, u)
		t := &tenantUser{email: userEmail(i), managed: true, first: firstName(i), last: "Bench",
			roles: []string{id.role}, groups: map[string]bool{id.group: true}, specGroups: true}
		if adopted(i) {
			s := simulator.UserSeed{Email: userEmail(i), Status: cipherscale.StatusActive,
				FirstName: firstName(i), LastName: "Bench", Roles: []string{id.role}, Groups: []string{id.group}}
			switch variant(i) {
			case 1:
				s.FirstName = "Old"
			case 2:
				s.Roles, s.Groups = nil, nil
			case 3:
				s.FirstName, s.LastName = "Old", "Name"
				s.Roles, s.Groups = []string{id.legacyRole}, []string{id.legacyGroup}
			}
			t.seed = &s
		}
		w.tenant = append(w.tenant, t)
		byEmail[t.email] = t
	}
	for k := 0; k < blocks(n); k++ {
		policy := iamv1alpha1.MembershipPolicyAdditive
		if authoritative(k) {
			policy = iamv1alpha1.MembershipPolicyAuthoritative
		}
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("team-%04d", k)},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: id.teams[k], Policy: policy},
		}
		for i := k*blockSize + 1; i <= min(k*blockSize+refsInBlock, n); i++ {
			m.Spec.Members = append(m.Spec.Members, iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: userName(i)}})
			byEmail[userEmail(i)].groups[id.teams[k]] = true
		}
		email := memberEmail(k)
		m.Spec.Members = append(m.Spec.Members, iamv1alpha1.Member{Email: email})
		t := &tenantUser{email: email, groups: map[string]bool{id.teams[k]: true},
			seed: &simulator.UserSeed{Email: email, Status: cipherscale.StatusActive, FirstName: "Member", LastName: "Unmanaged"}}
		w.tenant = append(w.tenant, t)
		if i, ok := strayOf(k, n); ok {
			s := byEmail[userEmail(i)].seed
			s.Groups = append(s.Groups, id.teams[k])
		}
		w.memberships = append(w.memberships, m)
	}
	for _, t := range w.tenant {
		if t.seed != nil {
			w.seeds = append(w.seeds, *t.seed)
		}
	}
	return w
}

// bound is the fewest calls the API needs to bring the seeded tenant to the declared state.
type bound struct {
	listPages     int // one read of the tenant before anything: ceil(seeded users / 100), at least 1
	creates       int // ceil(new users / 100): endpoint 2 takes up to 100 users, with their groups
	newUsers      int
	profileWrites int // endpoint 4: new users with a name (create takes no name), adopted ones whose name differs
	rolePatches   int // endpoint 10: one per user whose direct roles differ (adds and removals in one call)
	groupAdds     int // endpoint 11: one per existing user missing any declared group (it takes a list)
	groupRemoves  int // endpoint 12: one per (user, group) present, undeclared, in an authoritative scope
	adopted       int
	adoptedClean  int // adopted users that need no write
}

func (b bound) total() int {
	return b.listPages + b.creates + b.profileWrites + b.rolePatches + b.groupAdds + b.groupRemoves
}

func (w *workload) bound() bound {
	var b bound
	authGroups := map[string]bool{}
	for _, m := range w.memberships {
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative {
			authGroups[m.Spec.GroupID] = true
		}
	}
	b.listPages = max(1, (len(w.seeds)+cipherscale.MaxCreateBatch-1)/cipherscale.MaxCreateBatch)
	for _, t := range w.tenant {
		if t.seed == nil {
			// New: the create carries every declared group; names and roles need a call each.
			b.newUsers++
			if t.first != "" || t.last != "" {
				b.profileWrites++
			}
			if len(t.roles) > 0 {
				b.rolePatches++
			}
			continue
		}
		writes := 0
		if t.managed {
			b.adopted++
			if t.first != t.seed.FirstName || t.last != t.seed.LastName {
				writes++
				b.profileWrites++
			}
			if !sameSet(t.roles, t.seed.Roles) {
				writes++
				b.rolePatches++
			}
		}
		present := map[string]bool{}
		for _, g := range t.seed.Groups {
			present[g] = true
		}
		for g := range t.groups {
			if !present[g] {
				writes++
				b.groupAdds++
				break
			}
		}
		for g := range present {
			if !t.groups[g] && (t.specGroups || authGroups[g]) {
				writes++
				b.groupRemoves++
			}
		}
		if t.managed && writes == 0 {
			b.adoptedClean++
		}
	}
	b.creates = (b.newUsers + cipherscale.MaxCreateBatch - 1) / cipherscale.MaxCreateBatch
	return b
}

// formula spells the bound out, term by term.
func (b bound) formula() string {
	return fmt.Sprintf("%d list pages + %d creates (%d new users / 100) + %d profile writes + %d role patches + %d group adds + %d group removals",
		b.listPages, b.creates, b.newUsers, b.profileWrites, b.rolePatches, b.groupAdds, b.groupRemoves)
}

// membershipCounts describes the memberships for the report.
func (w *workload) membershipCounts() string {
	add, auth, refs, emails := 0, 0, 0, 0
	for _, m := range w.memberships {
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative {
			auth++
		} else {
			add++
		}
		for _, mem := range m.Spec.Members {
			if mem.UserRef != nil {
				refs++
			} else {
				emails++
			}
		}
	}
	strays := 0
	for k := range w.memberships {
		if _, ok := strayOf(k, w.n); ok {
			strays++
		}
	}
	return fmt.Sprintf("%d CipherscaleGroupMemberships (%d Additive, %d Authoritative, each on its own group) declaring %d members by userRef and %d by email (unmanaged tenant users); %d adopted users sit undeclared in an Authoritative group and must leave it",
		len(w.memberships), add, auth, refs, emails, strays)
}

func sameSet(a, b []string) bool {
	x := append([]string{}, a...)
	y := append([]string{}, b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, ",") == strings.Join(y, ",")
}

func ptr[T any](v T) *T { return &v }
