package simulator

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func TestControlSurface(t *testing.T) {
	s, ts := newTestServer(t)
	sim := func(method, path, body string) result { return do(t, ts.URL, "", method, path, body) }
	expect := func(r result, status int, what string) {
		t.Helper()
		if r.status != status {
			t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
		}
	}

	// Roles.
	r := sim("POST", "/_sim/roles", `{"name":"Admin","type":"ADMIN","description":"all"}`)
	expect(r, 201, "role")
	role := decode[cipherscale.Role](t, r.body)
	if _, err := uuid.Parse(role.ID); err != nil || role.Name != "Admin" || role.Type != cipherscale.RoleTypeAdmin ||
		role.Description != "all" || role.CreatedAt == nil || role.UpdatedAt == nil || !role.Deleteable {
		t.Errorf("role %+v", role)
	}
	r = sim("POST", "/_sim/roles", `{"name":"Billing","type":"BILLING","id":"role-billing"}`)
	expect(r, 201, "role with id")
	if decode[cipherscale.Role](t, r.body).ID != "role-billing" {
		t.Errorf("role id not kept: %s", r.body)
	}
	expect(sim("POST", "/_sim/roles", `{"name":"Again","type":"BASIC","id":"role-billing"}`), 409, "role id taken")
	expect(sim("POST", "/_sim/roles", `{"name":"X","type":"KING"}`), 400, "role type unknown")
	expect(sim("POST", "/_sim/roles", `{"type":"BASIC"}`), 400, "role without name")
	expect(sim("POST", "/_sim/roles", `{"name":"X","type":"BASIC","shade":"red"}`), 400, "role unknown field")
	expect(sim("POST", "/_sim/roles", `{"name":`), 400, "role bad JSON")
	expect(sim("GET", "/_sim/roles", ``), 405, "GET roles")

	// Groups.
	r = sim("POST", "/_sim/groups", `{"name":"Eng","description":"builders","roles":["`+role.ID+`"],"id":"g-eng"}`)
	expect(r, 201, "group")
	g := decode[map[string]any](t, r.body)
	if err := subset(map[string]any{"id": "g-eng", "name": "Eng", "description": "builders"}, g, "$"); err != nil {
		t.Error(err)
	}
	if _, ok := g["createdAt"]; !ok {
		t.Errorf("group without createdAt: %s", r.body)
	}
	expect(sim("POST", "/_sim/groups", `{"name":"Bad","roles":["nope"]}`), 404, "group with unknown role")
	expect(sim("POST", "/_sim/groups", `{"name":"Eng2","roles":[],"id":"g-eng"}`), 409, "group id taken")
	r = sim("POST", "/_sim/groups", `{"name":"Plain","roles":[]}`)
	expect(r, 201, "group with generated id")
	plain := decode[cipherscale.Group](t, r.body)
	if _, err := uuid.Parse(plain.ID); err != nil {
		t.Errorf("group id %q", plain.ID)
	}

	// Users made by hand.
	r = sim("POST", "/_sim/users", `{"email":"Owner@X.io","status":"active","isOwner":true,"firstName":"O","lastName":"W",
		"image":"i.png","roles":["role-billing"],"groups":["g-eng"]}`)
	expect(r, 201, "user")
	owner := decode[cipherscale.User](t, r.body)
	if owner.Status != cipherscale.StatusActive || !owner.IsOwner || owner.FirstName != "O" || owner.Image != "i.png" ||
		len(owner.Roles) != 1 || owner.Roles[0].ID != "role-billing" || len(owner.Groups) != 1 || owner.Groups[0].Name != "Eng" {
		t.Errorf("user %+v", owner)
	}
	r = sim("POST", "/_sim/users", `{"email":"plain@x.io"}`)
	expect(r, 201, "plain user")
	if u := decode[cipherscale.User](t, r.body); u.Status != cipherscale.StatusPending || u.IsOwner {
		t.Errorf("plain user %+v", u)
	}
	expect(sim("POST", "/_sim/users", `{"email":"owner@x.IO"}`), 409, "user email taken")
	expect(sim("POST", "/_sim/users", `{"email":"bad"}`), 400, "user bad email")
	expect(sim("POST", "/_sim/users", `{"email":"s@x.io","status":"sleeping"}`), 400, "user bad status")
	expect(sim("POST", "/_sim/users", `{"email":"s@x.io","roles":["nope"]}`), 404, "user unknown role")
	expect(sim("POST", "/_sim/users", `{"email":"s@x.io","groups":["nope"]}`), 404, "user unknown group")

	// An invitation through the API, then the listing.
	expect(do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON("inv@x.io", "g-eng")), 201, "create")
	r = sim("GET", "/_sim/users", "")
	expect(r, 200, "list users")
	var recs []map[string]any
	if err := json.Unmarshal(r.body, &recs); err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"user": map[string]any{"email": "Owner@X.io", "isOwner": true}, "invitationsSent": 0.0},
		map[string]any{"user": map[string]any{"email": "plain@x.io"}, "invitationsSent": 0.0},
		map[string]any{"user": map[string]any{"email": "inv@x.io", "status": "pending"}, "invitationsSent": 1.0},
	}
	got := make([]any, len(recs))
	for i := range recs {
		got[i] = recs[i]
	}
	if err := subset(want, got, "$"); err != nil {
		t.Errorf("GET /_sim/users: %v", err)
	}

	// Accept.
	inv, _ := s.UserByEmail("inv@x.io")
	r = sim("POST", "/_sim/users/"+inv.ID+"/accept", "")
	expect(r, 200, "accept")
	if u := decode[cipherscale.User](t, r.body); u.Status != cipherscale.StatusActive {
		t.Errorf("accepted user %+v", u)
	}
	expect(sim("POST", "/_sim/users/"+inv.ID+"/accept", ""), 409, "accept twice")
	expect(sim("POST", "/_sim/users/nobody/accept", ""), 404, "accept unknown")
	expect(sim("GET", "/_sim/users/"+inv.ID+"/accept", ""), 405, "GET accept")

	// Faults.
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"route":"GET /tenants/users","status":500,"rate":1,"retryAfterSeconds":2,"latencyMs":1,"count":1}]}`), 204, "faults")
	r = do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	if r.status != 500 || r.header.Get("Retry-After") != "2" {
		t.Errorf("fault from the control surface: %d %q", r.status, r.header.Get("Retry-After"))
	}
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"route":"GET /nope","status":500}]}`), 400, "fault unknown route")
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"rate":1.5}]}`), 400, "fault bad rate")
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"status":42}]}`), 400, "fault bad status")
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"count":-1}]}`), 400, "fault negative count")
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"retryAfter":1}]}`), 400, "fault unknown field")
	expect(sim("PUT", "/_sim/faults", `{"rules":[{"status":503}]}`), 204, "fault everywhere")
	expect(do(t, ts.URL, testKey, "GET", "/tenants/users", ""), 503, "faulted")
	expect(sim("DELETE", "/_sim/faults", ""), 204, "clear faults")
	expect(do(t, ts.URL, testKey, "GET", "/tenants/users", ""), 200, "not faulted")

	// Limits.
	expect(sim("PUT", "/_sim/limits", `{"requestsPerSecond":0.001,"burst":1}`), 204, "limits")
	expect(do(t, ts.URL, testKey, "GET", "/tenants/users", ""), 200, "within the burst")
	r = do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("limited: %d %q", r.status, r.header.Get("Retry-After"))
	}
	expect(sim("PUT", "/_sim/limits", `{"requestsPerSecond":"fast"}`), 400, "limits bad JSON")
	expect(sim("PUT", "/_sim/limits", `{"requestsPerSecond":1,"burst":-1}`), 400, "limits negative burst")

	// Stats: API routes only, by template and status.
	r = sim("GET", "/_sim/stats", "")
	expect(r, 200, "stats")
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	wantStats := map[string]any{"total": 6.0, "requests": []any{
		map[string]any{"route": "GET /tenants/users", "status": 200.0, "count": 2.0},
		map[string]any{"route": "GET /tenants/users", "status": 429.0, "count": 1.0},
		map[string]any{"route": "GET /tenants/users", "status": 500.0, "count": 1.0},
		map[string]any{"route": "GET /tenants/users", "status": 503.0, "count": 1.0},
		map[string]any{"route": "POST /tenants/users", "status": 201.0, "count": 1.0},
	}}
	if err := subset(wantStats, raw, "$"); err != nil {
		t.Errorf("stats: %v\n%s", err, r.body)
	}
	expect(sim("DELETE", "/_sim/stats", ""), 204, "clear stats")
	if st := s.Stats(); st.Total != 0 || len(st.Requests) != 0 {
		t.Errorf("stats after clearing: %+v", st)
	}
	r = sim("GET", "/_sim/stats", "")
	if string(r.body) != `{"total":0,"requests":[]}` {
		t.Errorf("empty stats: %s", r.body)
	}

	// Reset.
	s.SetFaults([]FaultRule{{Status: 500}})
	expect(sim("POST", "/_sim/reset", ""), 204, "reset")
	if len(s.Users()) != 0 || len(s.Roles()) != 0 || len(s.Groups()) != 0 || s.InvitationsSent("inv@x.io") != 0 {
		t.Error("tenant not empty after reset")
	}
	for i := 0; i < 3; i++ {
		expect(do(t, ts.URL, testKey, "GET", "/tenants/users", ""), 200, "no faults, no limit after reset")
	}
	if st := s.Stats(); st.Total != 3 {
		t.Errorf("stats after reset: %+v", st)
	}
	r = do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	if string(r.body) != `{"data":[],"total":0,"page":0,"limit":10,"hasNext":false,"hasPrevious":false}` {
		t.Errorf("empty page: %s", r.body)
	}

	// Unknown control paths.
	expect(sim("GET", "/_sim/nope", ""), 404, "unknown control path")
	expect(sim("GET", "/_sim", ""), 404, "control root")
	expect(sim("POST", "/_sim/users/x/y/accept", ""), 404, "bad accept path")
	if st := s.Stats(); st.Total != 4 {
		t.Errorf("control requests counted: %+v", st)
	}
}

func TestGoAPI(t *testing.T) {
	s := New(testKey)
	ownerID := fixture(t, s)

	if _, err := s.AddRole(RoleSeed{ID: roleAdmin, Name: "Again"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate role id: %v", err)
	}
	if r, err := s.AddRole(RoleSeed{Name: "Defaulted"}); err != nil || r.Type != cipherscale.RoleTypeDefault {
		t.Errorf("default type: %+v %v", r, err)
	}
	if r, err := s.AddRole(RoleSeed{Name: "Owner", Type: cipherscale.RoleTypeOwner}); err != nil || r.Deleteable {
		t.Errorf("owner role: %+v %v", r, err)
	}
	if _, err := s.AddRole(RoleSeed{ID: "a/b", Name: "Slash"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := s.AddGroup(GroupSeed{Name: "G", Roles: []string{"nope"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := s.AddUser(UserSeed{Email: "OWNER@example.com"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate email: %v", err)
	}
	if _, err := s.AddUser(UserSeed{Email: "x@y"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad email: %v", err)
	}
	u, err := s.AddUser(UserSeed{Email: "Hand@x.io", Groups: []string{groupEng}})
	if err != nil || u.Status != cipherscale.StatusPending || s.InvitationsSent("hand@x.io") != 0 {
		t.Fatalf("hand-made user %+v %v", u, err)
	}
	if got, err := s.Accept(u.ID); err != nil || got.Status != cipherscale.StatusActive {
		t.Errorf("accept: %+v %v", got, err)
	}
	if _, err := s.Accept(u.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("accept twice: %v", err)
	}
	if _, err := s.Accept("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("accept unknown: %v", err)
	}

	// Users is a deep copy in creation order with direct roles.
	us := s.Users()
	if len(us) != 2 || us[0].ID != ownerID || us[1].ID != u.ID {
		t.Fatalf("users %+v", us)
	}
	if len(us[0].Roles) != 1 || us[0].Roles[0].ID != roleAdmin || len(us[1].Roles) != 0 || us[1].Roles == nil {
		t.Errorf("roles %+v %+v", us[0].Roles, us[1].Roles)
	}
	us[0].Roles[0].Name = "mutated"
	*us[0].Roles[0].CreatedAt = us[0].Roles[0].CreatedAt.AddDate(1, 0, 0)
	us[1].Groups[0].Name = "mutated"
	again := s.Users()
	if again[0].Roles[0].Name != "Admin" || again[0].Roles[0].CreatedAt.Equal(*us[0].Roles[0].CreatedAt) || again[1].Groups[0].Name != "Engineering" {
		t.Error("Users shares state with the server")
	}
	if got, ok := s.UserByEmail("HAND@X.IO"); !ok || got.ID != u.ID {
		t.Errorf("UserByEmail: %+v %t", got, ok)
	}
	if _, ok := s.UserByID("nobody"); ok {
		t.Error("UserByID found nobody")
	}

	if err := s.SeedUsers(3, "bulk%d@x.io"); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.UserByEmail("bulk3@x.io"); !ok || got.Status != cipherscale.StatusPending {
		t.Errorf("seeded %+v %t", got, ok)
	}
	if err := s.SeedUsers(2, "nope"); err == nil {
		t.Error("a pattern without a number seeded")
	}

	seeded, err := New("k").ApplySeed(DemoSeed())
	if err != nil || len(seeded.Roles) != 4 || len(seeded.Groups) != 3 || len(seeded.Users) != 1 ||
		seeded.Roles[0].ID != DemoRoleAdminID || !seeded.Users[0].IsOwner {
		t.Errorf("demo seed: %+v %v", seeded, err)
	}

	s.SetFaults([]FaultRule{{Status: 500}})
	s.SetLimit(1, 1)
	s.Reset()
	if len(s.Users()) != 0 || len(s.Roles()) != 0 {
		t.Error("Reset left users or roles")
	}
	s.mu.Lock()
	if s.faults != nil || s.limiter != nil {
		t.Error("Reset left faults or limits")
	}
	s.mu.Unlock()
}

func TestFastEncodingMatchesJSON(t *testing.T) {
	if !fastEncodingMatches() {
		t.Fatal("the hand-written page encoder differs from json.Marshal of cipherscale.Page")
	}
	// And on a real tenant, through both paths.
	s := New(testKey)
	fixture(t, s)
	if _, err := s.AddUser(UserSeed{Email: "full@x.io", FirstName: "F", LastName: "L", Image: "<i>",
		Roles: []string{roleAuditor, roleSupport}, Groups: []string{groupEng, groupOps}}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	got := s.t.appendPage(nil, s.t.users, 2, 0, 10, false, false)
	s.mu.Unlock()
	want, err := json.Marshal(cipherscale.Page{Data: s.Users(), Total: 2, Page: 0, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("fast:\n%s\njson.Marshal:\n%s", got, want)
	}
}
