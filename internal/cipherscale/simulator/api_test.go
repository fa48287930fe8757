package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// step is one request of a scenario and what must come back.
type step struct {
	name   string
	method string
	path   string // "{alias}" is replaced by a saved id
	body   string // likewise
	key    string // "" sends the right key, "-" none, anything else that key
	status int
	want   string // JSON the response must contain (see subset); "" not checked
	empty  bool   // the response must have no body
	save   string // alias for the "id" of the response object
	saves  []string
	check  func(t *testing.T, s *Server, ids map[string]string, r result)
}

type scenario struct {
	name  string
	steps []step
}

func userJSON(email string, groups ...string) string {
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(map[string]any{"email": email, "groups": groups})
	return string(b)
}

func batch(items ...string) string { return "[" + strings.Join(items, ",") + "]" }

func manyUsers(n int, pattern string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = userJSON(fmt.Sprintf(pattern, i))
	}
	return batch(items...)
}

func createdCount(n int) func(t *testing.T, s *Server, ids map[string]string, r result) {
	return func(t *testing.T, s *Server, ids map[string]string, r result) {
		if got := len(s.Users()); got != n {
			t.Errorf("tenant has %d users, want %d", got, n)
		}
	}
}

func invitations(email string, n int) func(t *testing.T, s *Server, ids map[string]string, r result) {
	return func(t *testing.T, s *Server, ids map[string]string, r result) {
		if got := s.InvitationsSent(email); got != n {
			t.Errorf("InvitationsSent(%s) = %d, want %d", email, got, n)
		}
	}
}

func TestAPIScenarios(t *testing.T) {
	scenarios := []scenario{
		{"auth and routing", []step{
			{name: "no key", method: "GET", path: "/tenants/users", key: "-", status: 401, want: `{"code":"unauthorized"}`},
			{name: "wrong key", method: "GET", path: "/tenants/users", key: "nope", status: 401, want: `{"code":"unauthorized"}`},
			{name: "unknown path needs a key", method: "GET", path: "/tenants/nope", key: "-", status: 401},
			{name: "unknown path", method: "GET", path: "/tenants/nope", status: 404, want: `{"code":"not_found"}`},
			{name: "trailing slash", method: "GET", path: "/tenants/users/", status: 404},
			{name: "unknown sub-resource", method: "GET", path: "/tenants/users/{owner}/bogus", status: 404},
			{name: "outside the API", method: "GET", path: "/", key: "-", status: 404},
			{name: "wrong method on list", method: "PUT", path: "/tenants/users", status: 405, want: `{"code":"method_not_allowed"}`,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					if got := r.header.Get("Allow"); got != "GET, POST" {
						t.Errorf("Allow = %q", got)
					}
				}},
			{name: "wrong method on roles", method: "DELETE", path: "/tenants/users/{owner}/roles", status: 405},
			{name: "wrong method on group membership", method: "GET", path: "/tenants/users/{owner}/groups/group-eng", status: 405},
			{name: "stats", method: "GET", path: "/_sim/stats", key: "-", status: 200,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					st := decode[Stats](t, r.body)
					if st.Total != 10 || st.CountStatus(cipherscale.RouteListUsers, 401) != 2 ||
						st.CountStatus(RouteUnmatched, 401) != 1 || st.CountStatus(RouteUnmatched, 404) != 4 ||
						st.CountStatus(RouteUnmatched, 405) != 3 {
						t.Errorf("stats = %+v", st)
					}
				}},
		}},

		{"create one", []step{
			{name: "object", method: "POST", path: "/tenants/users", body: userJSON("Alice@Example.com"), status: 201, save: "alice",
				want: `{"email":"Alice@Example.com","status":"pending","isOwner":false,"maxDevices":null,"roles":[],"groups":[],"devices":[]}`,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					m := decode[map[string]any](t, r.body)
					if _, err := uuid.Parse(ids["alice"]); err != nil {
						t.Errorf("id %q is not a uuid", ids["alice"])
					}
					c := mustParseTime(t, m["createdAt"].(string))
					u := mustParseTime(t, m["updatedAt"].(string))
					if !c.Equal(u) {
						t.Errorf("createdAt %v != updatedAt %v", c, u)
					}
					invitations("alice@example.com", 1)(t, s, ids, r)
				}},
			{name: "read", method: "GET", path: "/tenants/users/{alice}", status: 200,
				want: `{"id":"{alice}","email":"Alice@Example.com","status":"pending","roles":[],"groups":[],"devices":[]}`},
			{name: "email exists in another case", method: "POST", path: "/tenants/users", body: userJSON("alice@EXAMPLE.com"), status: 409,
				want: `{"code":"conflict","emails":["alice@EXAMPLE.com"]}`, check: createdCount(2)},
			{name: "with a group", method: "POST", path: "/tenants/users", body: userJSON("bob@example.com", groupEng), status: 201,
				want: `{"email":"bob@example.com","groups":[{"id":"group-eng","name":"Engineering"}],"roles":[]}`,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					u := decode[cipherscale.User](t, r.body)
					if len(u.Groups) != 1 || u.Groups[0].CreatedAt == nil || u.Groups[0].UpdatedAt == nil {
						t.Errorf("group without timestamps: %+v", u.Groups)
					}
				}},
			{name: "unknown user", method: "GET", path: "/tenants/users/9b2d3f4e-0000-4000-8000-000000000000", status: 404, want: `{"code":"not_found"}`},
		}},

		{"create batch", []step{
			{name: "two", method: "POST", path: "/tenants/users", body: batch(userJSON("c1@x.io"), userJSON("c2@x.io", groupOps, groupOps)),
				status: 201, saves: []string{"c1", "c2"},
				want: `[{"email":"c1@x.io","status":"pending","groups":[]},{"email":"c2@x.io","groups":[{"id":"group-ops","name":"Ops","description":"operations"}]}]`,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					invitations("c1@x.io", 1)(t, s, ids, r)
					invitations("C2@X.IO", 1)(t, s, ids, r)
				}},
			{name: "one-element array answers an array", method: "POST", path: "/tenants/users", body: batch(userJSON("c3@x.io")), status: 201,
				want: `[{"email":"c3@x.io"}]`},
			{name: "empty array", method: "POST", path: "/tenants/users", body: `[]`, status: 400, want: `{"code":"bad_request"}`},
			{name: "101 items", method: "POST", path: "/tenants/users", body: manyUsers(101, "big%d@x.io"), status: 400, check: createdCount(4)},
			{name: "bad JSON", method: "POST", path: "/tenants/users", body: `{"email":`, status: 400},
			{name: "bad JSON array", method: "POST", path: "/tenants/users", body: `[{"email":"z@x.io","groups":[]},]`, status: 400},
			{name: "not an object", method: "POST", path: "/tenants/users", body: `"z@x.io"`, status: 400},
			{name: "no body", method: "POST", path: "/tenants/users", status: 400},
			{name: "missing groups", method: "POST", path: "/tenants/users", body: `{"email":"d@x.io"}`, status: 400,
				want: `{"emails":["d@x.io"]}`},
			{name: "null groups", method: "POST", path: "/tenants/users", body: `[{"email":"d@x.io","groups":null}]`, status: 400,
				want: `{"emails":["d@x.io"]}`},
			{name: "groups not a list", method: "POST", path: "/tenants/users", body: `[{"email":"d@x.io","groups":"group-eng"}]`, status: 400,
				want: `{"emails":["d@x.io"]}`},
			{name: "invalid email spoils the batch", method: "POST", path: "/tenants/users",
				body: batch(userJSON("e@x.io"), userJSON("not-an-email")), status: 400, want: `{"emails":["not-an-email"]}`, check: createdCount(4)},
			{name: "missing email", method: "POST", path: "/tenants/users", body: `[{"groups":[]}]`, status: 400},
			{name: "email without a dot", method: "POST", path: "/tenants/users", body: userJSON("a@b"), status: 400, want: `{"emails":["a@b"]}`},
			{name: "email too long", method: "POST", path: "/tenants/users", body: userJSON(strings.Repeat("a", 250) + "@x.io"), status: 400},
			{name: "duplicates in the batch", method: "POST", path: "/tenants/users",
				body: batch(userJSON("dup@x.io"), userJSON("f@x.io"), userJSON("DUP@x.io")), status: 400, want: `{"emails":["dup@x.io"]}`, check: createdCount(4)},
			{name: "existing emails", method: "POST", path: "/tenants/users",
				body: batch(userJSON("new1@x.io"), userJSON("C1@X.IO"), userJSON("owner@example.com")), status: 409,
				want: `{"code":"conflict","emails":["C1@X.IO","owner@example.com"]}`, check: createdCount(4)},
			{name: "unknown groups", method: "POST", path: "/tenants/users",
				body: batch(userJSON("new2@x.io", "nope"), userJSON("new3@x.io"), userJSON("new4@x.io", groupEng, "nope2")), status: 404,
				want: `{"code":"not_found","emails":["new2@x.io","new4@x.io"]}`, check: createdCount(4)},
			{name: "nothing of the refused batches", method: "GET", path: "/tenants/users?limit=100", status: 200,
				want: `{"total":4}`},
			{name: "exactly 100", method: "POST", path: "/tenants/users", body: manyUsers(100, "hundred%d@x.io"), status: 201,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					us := decode[[]cipherscale.User](t, r.body)
					if len(us) != 100 || us[0].Email != "hundred0@x.io" || us[99].Email != "hundred99@x.io" {
						t.Errorf("got %d users", len(us))
					}
					createdCount(104)(t, s, ids, r)
				}},
		}},

		{"profile", []step{
			{name: "create", method: "POST", path: "/tenants/users", body: userJSON("pam@x.io"), status: 201, save: "pam"},
			{name: "first name", method: "PUT", path: "/tenants/users/{pam}", body: `{"firstName":"Pam"}`, status: 200,
				want: `{"id":"{pam}","firstName":"Pam","status":"pending"}`,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					u := decode[cipherscale.User](t, r.body)
					if !u.UpdatedAt.After(u.CreatedAt) {
						t.Errorf("updatedAt %v not after createdAt %v", u.UpdatedAt, u.CreatedAt)
					}
					if u.LastName != "" || u.Image != "" {
						t.Errorf("unexpected fields: %+v", u)
					}
				}},
			{name: "others unchanged", method: "PUT", path: "/tenants/users/{pam}", body: `{"lastName":"Beesly","image":"https://x.io/p.png"}`,
				status: 200, want: `{"firstName":"Pam","lastName":"Beesly","image":"https://x.io/p.png"}`},
			{name: "empty update", method: "PUT", path: "/tenants/users/{pam}", body: `{}`, status: 200, want: `{"firstName":"Pam","lastName":"Beesly"}`},
			{name: "bad JSON", method: "PUT", path: "/tenants/users/{pam}", body: `{"firstName":`, status: 400},
			{name: "not an object", method: "PUT", path: "/tenants/users/{pam}", body: `["Pam"]`, status: 400},
			{name: "wrong type", method: "PUT", path: "/tenants/users/{pam}", body: `{"firstName":5}`, status: 400},
			{name: "unknown user", method: "PUT", path: "/tenants/users/nobody", body: `{"firstName":"X"}`, status: 404},
			{name: "stored", method: "GET", path: "/tenants/users/{pam}", status: 200, want: `{"firstName":"Pam","lastName":"Beesly","image":"https://x.io/p.png"}`},
		}},

		{"lifecycle", []step{
			{name: "create", method: "POST", path: "/tenants/users", body: userJSON("pat@x.io"), status: 201, save: "pat", want: `{"status":"pending"}`},
			{name: "resend while pending", method: "POST", path: "/tenants/users/{pat}/invite", status: 204, empty: true, check: invitations("pat@x.io", 2)},
			{name: "deactivate pending", method: "PATCH", path: "/tenants/users/{pat}/deactivate", status: 200, want: `{"status":"inactive"}`},
			{name: "no invite while inactive", method: "POST", path: "/tenants/users/{pat}/invite", status: 409, want: `{"code":"conflict"}`},
			{name: "reactivate never accepted", method: "POST", path: "/tenants/users/{pat}/reactivate", status: 201, want: `{"status":"pending"}`},
			{name: "accept", method: "POST", path: "/_sim/users/{pat}/accept", key: "-", status: 200, want: `{"id":"{pat}","status":"active"}`},
			{name: "accept twice", method: "POST", path: "/_sim/users/{pat}/accept", key: "-", status: 409},
			{name: "accept unknown", method: "POST", path: "/_sim/users/nobody/accept", key: "-", status: 404},
			{name: "no invite while active", method: "POST", path: "/tenants/users/{pat}/invite", status: 409, check: invitations("pat@x.io", 2)},
			{name: "deactivate active", method: "PATCH", path: "/tenants/users/{pat}/deactivate", status: 200, want: `{"status":"inactive"}`},
			{name: "deactivate again", method: "PATCH", path: "/tenants/users/{pat}/deactivate", status: 200, want: `{"status":"inactive"}`},
			{name: "reactivate accepted", method: "POST", path: "/tenants/users/{pat}/reactivate", status: 201, want: `{"status":"active"}`},
			{name: "owner not deactivated", method: "PATCH", path: "/tenants/users/{owner}/deactivate", status: 403, want: `{"code":"forbidden"}`},
			{name: "owner not deleted", method: "DELETE", path: "/tenants/users/{owner}", status: 403, want: `{"code":"forbidden"}`},
			{name: "owner intact", method: "GET", path: "/tenants/users/{owner}", status: 200, want: `{"status":"active","isOwner":true}`},
			{name: "deactivate unknown", method: "PATCH", path: "/tenants/users/nobody/deactivate", status: 404},
			{name: "reactivate unknown", method: "POST", path: "/tenants/users/nobody/reactivate", status: 404},
			{name: "invite unknown", method: "POST", path: "/tenants/users/nobody/invite", status: 404},
			{name: "delete", method: "DELETE", path: "/tenants/users/{pat}", status: 204, empty: true},
			{name: "gone", method: "GET", path: "/tenants/users/{pat}", status: 404},
			{name: "delete again", method: "DELETE", path: "/tenants/users/{pat}", status: 404,
				check: func(t *testing.T, s *Server, ids map[string]string, r result) {
					if _, ok := s.UserByEmail("PAT@x.io"); ok {
						t.Error("deleted user still found by email")
					}
					if _, ok := s.UserByID(ids["pat"]); ok {
						t.Error("deleted user still found by id")
					}
					invitations("pat@x.io", 2)(t, s, ids, r)
				}},
			{name: "email free again", method: "POST", path: "/tenants/users", body: userJSON("Pat@x.io"), status: 201, check: invitations("pat@x.io", 3)},
		}},

		{"roles", []step{
			{name: "create", method: "POST", path: "/tenants/users", body: userJSON("rae@x.io", groupEng), status: 201, save: "rae"},
			{name: "add a direct role", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":["role-admin"],"removedRoles":[]}`,
				status: 200, empty: true},
			{name: "user shows direct roles only", method: "GET", path: "/tenants/users/{rae}", status: 200,
				want: `{"roles":[{"id":"role-admin","name":"Admin","type":"ADMIN","deleteable":true}],"groups":[{"id":"group-eng"}]}`},
			{name: "rolesOnly", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=true", status: 200, want: `[{"id":"role-admin"}]`},
			{name: "groupsOnly", method: "GET", path: "/tenants/users/{rae}/roles?groupsOnly=true", status: 200,
				want: `[{"id":"role-auditor","name":"Auditor","type":"AUDITOR","description":"reads"},{"id":"role-support"}]`},
			{name: "union", method: "GET", path: "/tenants/users/{rae}/roles", status: 200,
				want: `[{"id":"role-admin"},{"id":"role-auditor"},{"id":"role-support"}]`},
			{name: "both false", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=false&groupsOnly=false", status: 200,
				want: `[{"id":"role-admin"},{"id":"role-auditor"},{"id":"role-support"}]`},
			{name: "both true", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=true&groupsOnly=true", status: 400},
			{name: "not a boolean", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=yes", status: 400},
			{name: "direct and inherited", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":["role-auditor"],"removedRoles":[]}`, status: 200},
			{name: "union deduplicated", method: "GET", path: "/tenants/users/{rae}/roles", status: 200,
				want: `[{"id":"role-admin"},{"id":"role-auditor"},{"id":"role-support"}]`},
			{name: "missing removedRoles", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":["role-support"]}`, status: 400},
			{name: "missing addedRoles", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"removedRoles":[]}`, status: 400},
			{name: "null addedRoles", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":null,"removedRoles":[]}`, status: 400},
			{name: "not an object", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `[]`, status: 400},
			{name: "no body", method: "PATCH", path: "/tenants/users/{rae}/roles", status: 400},
			{name: "unknown role applies nothing", method: "PATCH", path: "/tenants/users/{rae}/roles",
				body: `{"addedRoles":["role-support","nope"],"removedRoles":["role-admin"]}`, status: 404, want: `{"code":"not_found"}`},
			{name: "unchanged", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=true", status: 200,
				want: `[{"id":"role-admin"},{"id":"role-auditor"}]`},
			{name: "no-ops", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":["role-admin"],"removedRoles":["role-support"]}`, status: 200},
			{name: "still unchanged", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=true", status: 200,
				want: `[{"id":"role-admin"},{"id":"role-auditor"}]`},
			{name: "remove", method: "PATCH", path: "/tenants/users/{rae}/roles", body: `{"addedRoles":[],"removedRoles":["role-admin","role-auditor"]}`, status: 200},
			{name: "none direct", method: "GET", path: "/tenants/users/{rae}/roles?rolesOnly=true", status: 200, want: `[]`},
			{name: "inherited stay", method: "GET", path: "/tenants/users/{rae}/roles", status: 200, want: `[{"id":"role-auditor"},{"id":"role-support"}]`},
			{name: "user roles empty list", method: "GET", path: "/tenants/users/{rae}", status: 200, want: `{"roles":[]}`},
			{name: "patch unknown user", method: "PATCH", path: "/tenants/users/nobody/roles", body: `{"addedRoles":[],"removedRoles":[]}`, status: 404},
			{name: "roles of unknown user", method: "GET", path: "/tenants/users/nobody/roles", status: 404},
			{name: "owner's direct roles", method: "GET", path: "/tenants/users/{owner}/roles?rolesOnly=true", status: 200, want: `[{"id":"role-admin"}]`},
		}},

		{"groups", []step{
			{name: "create", method: "POST", path: "/tenants/users", body: userJSON("gus@x.io"), status: 201, save: "gus"},
			{name: "empty object", method: "POST", path: "/tenants/users/{gus}/groups", body: `{}`, status: 400},
			{name: "empty list", method: "POST", path: "/tenants/users/{gus}/groups", body: `{"groups":[]}`, status: 400},
			{name: "no body", method: "POST", path: "/tenants/users/{gus}/groups", status: 400},
			{name: "bad JSON", method: "POST", path: "/tenants/users/{gus}/groups", body: `{"groups":[`, status: 400},
			{name: "unknown group applies nothing", method: "POST", path: "/tenants/users/{gus}/groups", body: `{"groups":["group-eng","nope"]}`, status: 404},
			{name: "still none", method: "GET", path: "/tenants/users/{gus}", status: 200, want: `{"groups":[]}`},
			{name: "add", method: "POST", path: "/tenants/users/{gus}/groups", body: `{"groups":["group-eng"]}`, status: 201, empty: true},
			{name: "add again and another", method: "POST", path: "/tenants/users/{gus}/groups", body: `{"groups":["group-eng","group-ops"]}`, status: 201},
			{name: "members", method: "GET", path: "/tenants/users/{gus}", status: 200,
				want: `{"groups":[{"id":"group-eng","name":"Engineering"},{"id":"group-ops","name":"Ops","description":"operations"}],"roles":[]}`},
			{name: "inherited", method: "GET", path: "/tenants/users/{gus}/roles?groupsOnly=true", status: 200, want: `[{"id":"role-auditor"},{"id":"role-support"}]`},
			{name: "remove", method: "DELETE", path: "/tenants/users/{gus}/groups/group-eng", status: 204, empty: true},
			{name: "removed", method: "GET", path: "/tenants/users/{gus}", status: 200, want: `{"groups":[{"id":"group-ops"}]}`},
			{name: "inherited after removal", method: "GET", path: "/tenants/users/{gus}/roles?groupsOnly=true", status: 200, want: `[{"id":"role-auditor"}]`},
			{name: "remove again", method: "DELETE", path: "/tenants/users/{gus}/groups/group-eng", status: 204},
			{name: "unknown group", method: "DELETE", path: "/tenants/users/{gus}/groups/nope", status: 404},
			{name: "unknown user", method: "DELETE", path: "/tenants/users/nobody/groups/group-eng", status: 404},
			{name: "add to unknown user", method: "POST", path: "/tenants/users/nobody/groups", body: `{"groups":["group-eng"]}`, status: 404},
		}},
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s, ts := newTestServer(t)
			ids := map[string]string{"owner": fixture(t, s)}
			subst := func(v string) string {
				for alias, id := range ids {
					v = strings.ReplaceAll(v, "{"+alias+"}", id)
				}
				return v
			}
			for _, st := range sc.steps {
				key := testKey
				switch st.key {
				case "":
				case "-":
					key = ""
				default:
					key = st.key
				}
				r := do(t, ts.URL, key, st.method, subst(st.path), subst(st.body))
				if r.status != st.status {
					t.Fatalf("%s: %s %s: status %d, want %d: %s", st.name, st.method, st.path, r.status, st.status, r.body)
				}
				if strings.Contains(string(r.body), testKey) {
					t.Errorf("%s: the response echoes the API key", st.name)
				}
				if st.empty && len(r.body) != 0 {
					t.Errorf("%s: want no body, got %s", st.name, r.body)
				}
				if len(r.body) > 0 && r.header.Get("Content-Type") != "application/json" {
					t.Errorf("%s: Content-Type %q", st.name, r.header.Get("Content-Type"))
				}
				if r.status >= 400 {
					eb := decode[cipherscale.ErrorBody](t, r.body)
					if eb.Message == "" || eb.Code == "" {
						t.Errorf("%s: error body without message or code: %s", st.name, r.body)
					}
				}
				if st.want != "" {
					var want, got any
					if err := json.Unmarshal([]byte(subst(st.want)), &want); err != nil {
						t.Fatalf("%s: bad want: %v", st.name, err)
					}
					if err := json.Unmarshal(r.body, &got); err != nil {
						t.Fatalf("%s: response is not JSON: %v: %s", st.name, err, r.body)
					}
					if err := subset(want, got, "$"); err != nil {
						t.Errorf("%s: %v\nbody: %s", st.name, err, r.body)
					}
				}
				if st.save != "" {
					ids[st.save] = decode[cipherscale.User](t, r.body).ID
				}
				for i, u := range decodeSaves(t, st, r) {
					ids[st.saves[i]] = u.ID
				}
				if st.check != nil {
					st.check(t, s, ids, r)
				}
			}
		})
	}
}

func decodeSaves(t *testing.T, st step, r result) []cipherscale.User {
	if len(st.saves) == 0 {
		return nil
	}
	us := decode[[]cipherscale.User](t, r.body)
	if len(us) != len(st.saves) {
		t.Fatalf("%s: %d users, want %d", st.name, len(us), len(st.saves))
	}
	return us
}

func TestListPagination(t *testing.T) {
	s, ts := newTestServer(t)
	if err := s.SeedUsers(25, "user%02d@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedUsers(1, "user%02d@example.com"); err == nil {
		t.Fatal("seeding a taken email succeeded")
	}
	if n := len(s.Users()); n != 25 {
		t.Fatalf("%d users after a refused seed", n)
	}
	tests := []struct {
		query                      string
		status                     int
		limit, page, n, firstIndex int
		hasNext, hasPrev           bool
	}{
		{query: "", status: 200, limit: 10, page: 0, n: 10, firstIndex: 1, hasNext: true},
		{query: "?limit=10&offset=10", status: 200, limit: 10, page: 1, n: 10, firstIndex: 11, hasNext: true, hasPrev: true},
		{query: "?limit=10&offset=20", status: 200, limit: 10, page: 2, n: 5, firstIndex: 21, hasPrev: true},
		{query: "?limit=7&offset=15", status: 200, limit: 7, page: 2, n: 7, firstIndex: 16, hasNext: true, hasPrev: true},
		{query: "?limit=5&offset=20", status: 200, limit: 5, page: 4, n: 5, firstIndex: 21, hasPrev: true},
		{query: "?offset=30", status: 200, limit: 10, page: 3, n: 0, hasPrev: true},
		{query: "?limit=1000", status: 200, limit: 100, page: 0, n: 25, firstIndex: 1},
		{query: "?limit=101&offset=1", status: 200, limit: 100, page: 0, n: 24, firstIndex: 2, hasPrev: true},
		{query: "?limit=0", status: 400},
		{query: "?limit=-1", status: 400},
		{query: "?limit=abc", status: 400},
		{query: "?limit=2.5", status: 400},
		{query: "?limit=", status: 400},
		{query: "?offset=-1", status: 400},
		{query: "?offset=x", status: 400},
		{query: "?sort=bogus", status: 400},
		{query: "?sort=email&sort=-nope", status: 400},
		{query: "?sort=-email&limit=3", status: 200, limit: 3, n: 3, firstIndex: 25, hasNext: true},
		{query: "?sort=email&limit=3&offset=3", status: 200, limit: 3, page: 1, n: 3, firstIndex: 4, hasNext: true, hasPrev: true},
		{query: "?sort=-createdAt&limit=2", status: 200, limit: 2, n: 2, firstIndex: 25, hasNext: true},
		{query: "?sort=status&sort=-updatedAt&limit=2", status: 200, limit: 2, n: 2, firstIndex: 25, hasNext: true},
		{query: "?sort=firstName&sort=lastName&limit=2", status: 200, limit: 2, n: 2, firstIndex: 1, hasNext: true},
	}
	for _, tc := range tests {
		r := do(t, ts.URL, testKey, "GET", "/tenants/users"+tc.query, "")
		if r.status != tc.status {
			t.Errorf("%q: status %d, want %d: %s", tc.query, r.status, tc.status, r.body)
			continue
		}
		if tc.status != 200 {
			continue
		}
		raw := decode[map[string]any](t, r.body)
		for _, k := range []string{"data", "total", "page", "limit", "hasNext", "hasPrevious"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%q: no %q in %s", tc.query, k, r.body)
			}
		}
		p := decode[cipherscale.Page](t, r.body)
		if p.Total != 25 || p.Limit != tc.limit || p.Page != tc.page || len(p.Data) != tc.n ||
			p.HasNext != tc.hasNext || p.HasPrevious != tc.hasPrev {
			t.Errorf("%q: total %d limit %d page %d n %d next %t prev %t; want limit %d page %d n %d next %t prev %t",
				tc.query, p.Total, p.Limit, p.Page, len(p.Data), p.HasNext, p.HasPrevious,
				tc.limit, tc.page, tc.n, tc.hasNext, tc.hasPrev)
		}
		if tc.n > 0 {
			if want := fmt.Sprintf("user%02d@example.com", tc.firstIndex); p.Data[0].Email != want {
				t.Errorf("%q: first %s, want %s", tc.query, p.Data[0].Email, want)
			}
		}
	}

	// Sorting follows changes: after a profile update, sort by firstName puts the named user last.
	first := s.Users()[0]
	if r := do(t, ts.URL, testKey, "PUT", "/tenants/users/"+first.ID, `{"firstName":"Zed"}`); r.status != 200 {
		t.Fatalf("PUT: %d", r.status)
	}
	p := decode[cipherscale.Page](t, do(t, ts.URL, testKey, "GET", "/tenants/users?sort=firstName&offset=24", "").body)
	if len(p.Data) != 1 || p.Data[0].ID != first.ID {
		t.Errorf("sort=firstName after update: %+v", p.Data)
	}
	p = decode[cipherscale.Page](t, do(t, ts.URL, testKey, "GET", "/tenants/users?sort=-updatedAt&limit=1", "").body)
	if len(p.Data) != 1 || p.Data[0].ID != first.ID {
		t.Errorf("sort=-updatedAt after update: %+v", p.Data)
	}
	// Deleting keeps creation order for the rest.
	if r := do(t, ts.URL, testKey, "DELETE", "/tenants/users/"+first.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", r.status)
	}
	p = decode[cipherscale.Page](t, do(t, ts.URL, testKey, "GET", "/tenants/users?limit=100", "").body)
	if p.Total != 24 || p.Data[0].Email != "user02@example.com" || p.Data[23].Email != "user25@example.com" {
		t.Errorf("after delete: total %d first %s", p.Total, p.Data[0].Email)
	}
}
