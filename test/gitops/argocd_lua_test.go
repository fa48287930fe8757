package gitops_test

import (
	"context"
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// argoHealth is what Argo CD makes of the object with the health script: it runs the script the
// way Argo CD's Lua VM does (a fresh state with only the package, base and table libraries, the
// object as the global `obj`, a time limit) and reads the table it returns.
func argoHealth(script string, obj map[string]any) (status, message string, err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	runCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(runCtx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	st, ok := ret.RawGetString("status").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("the returned table has no string status")
	}
	switch string(st) {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		// Argo CD turns an unknown status into Unknown with an error.
		return "", "", fmt.Errorf("the status %q is not one Argo CD knows", st)
	}
	if m, ok := ret.RawGetString("message").(lua.LString); ok {
		message = string(m)
	}
	return string(st), message, nil
}

// toLua converts a decoded JSON value the way Argo CD does (decodeValue): maps to tables with
// string keys, slices to arrays, numbers to Lua numbers.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	Fail(fmt.Sprintf("no Lua value for %T", v))
	return lua.LNil
}

func readScript() string {
	GinkgoHelper()
	data, err := os.ReadFile(luaScript)
	Expect(err).NotTo(HaveOccurred())
	return string(data)
}

// cond builds a condition as the API server serves it.
func cond(typ, status, reason, message string, observed int64) map[string]any {
	return map[string]any{
		"type": typ, "status": status, "reason": reason, "message": message,
		"observedGeneration": observed, "lastTransitionTime": "2026-01-01T00:00:00Z",
	}
}

// object builds a CipherscaleUser or membership as the API server serves it.
func object(kind string, generation int64, status map[string]any) map[string]any {
	o := map[string]any{
		"apiVersion": "iam.cipherscale.com/v1alpha1",
		"kind":       kind,
		"metadata":   map[string]any{"name": "x", "namespace": "ns", "generation": generation},
		"spec":       map[string]any{},
	}
	if status != nil {
		o["status"] = status
	}
	return o
}

var _ = Describe("the Argo CD health script on hand-made objects", func() {
	var script string
	BeforeEach(func() { script = readScript() })

	DescribeTable("maps each state to an Argo CD health status",
		func(st map[string]any, generation int64, wantStatus, wantMessage string, wantK status.Status) {
			for _, kind := range []string{"CipherscaleUser", "CipherscaleGroupMembership"} {
				obj := object(kind, generation, st)
				got, msg, err := argoHealth(script, obj)
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(Equal(wantStatus), "%s", kind)
				Expect(msg).To(ContainSubstring(wantMessage), "%s", kind)
				// What kstatus (Flux) makes of the same object, for comparison.
				res, err := status.Compute(&unstructured.Unstructured{Object: obj})
				Expect(err).NotTo(HaveOccurred())
				Expect(res.Status).To(Equal(wantK), "kstatus of %s: %s", kind, res.Message)
			}
		},
		Entry("no status yet", nil, int64(1), "Progressing", "Waiting for the operator to report a status",
			// kstatus cannot tell a missing status from a kind without one.
			status.CurrentStatus),
		Entry("an empty status", map[string]any{}, int64(1), "Progressing", "observe generation 1", status.CurrentStatus),
		Entry("an older generation observed", map[string]any{
			"observedGeneration": int64(1),
			"conditions":         []any{cond("Ready", "True", "UpToDate", "The tenant user matches the spec", 1)},
		}, int64(2), "Progressing", "observe generation 2", status.InProgressStatus),
		Entry("Reconciling", map[string]any{
			"observedGeneration": int64(3),
			"conditions": []any{
				cond("Ready", "False", "APIUnavailable", "The Cipherscale API is unavailable", 3),
				cond("Reconciling", "True", "APIUnavailable", "The Cipherscale API is unavailable", 3),
			},
		}, int64(3), "Progressing", "APIUnavailable: The Cipherscale API is unavailable", status.InProgressStatus),
		Entry("Stalled", map[string]any{
			"observedGeneration": int64(1),
			"conditions": []any{
				cond("Ready", "False", "InvalidReference", "The tenant has no role", 1),
				cond("Stalled", "True", "InvalidReference", "The tenant has no role", 1),
			},
		}, int64(1), "Degraded", "InvalidReference: The tenant has no role", status.FailedStatus),
		Entry("Ready", map[string]any{
			"observedGeneration": int64(1),
			"conditions":         []any{cond("Ready", "True", "UpToDate", "All 2 members are in the group", 1)},
		}, int64(1), "Healthy", "UpToDate: All 2 members are in the group", status.CurrentStatus),
		Entry("Ready False without Reconciling or Stalled (a paused object)", map[string]any{
			"observedGeneration": int64(1),
			"conditions":         []any{cond("Ready", "False", "Paused", "Paused: the tenant differs from the spec", 1)},
		}, int64(1), "Progressing", "Paused: the tenant differs from the spec", status.InProgressStatus),
		Entry("an observed generation but no condition", map[string]any{"observedGeneration": int64(1)},
			int64(1), "Progressing", "Waiting for the Ready condition", status.CurrentStatus),
		Entry("a Reconciling condition that is False does not count", map[string]any{
			"observedGeneration": int64(1),
			"conditions": []any{
				cond("Reconciling", "False", "Done", "", 1),
				cond("Ready", "True", "UpToDate", "ok", 1),
			},
		}, int64(1), "Healthy", "UpToDate: ok", status.CurrentStatus),
	)

	It("runs with only the libraries Argo CD opens", func() {
		// The string, math and os libraries are not opened: a script using them fails here.
		status, _, err := argoHealth(script, object("CipherscaleUser", 1, map[string]any{"observedGeneration": int64(1)}))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal("Progressing"))
	})

	It("reports a script error rather than a health status", func() {
		_, _, err := argoHealth("hs = {} hs.status = 'Fine' return hs", object("CipherscaleUser", 1, nil))
		Expect(err).To(MatchError(ContainSubstring("not one Argo CD knows")))
		_, _, err = argoHealth("return obj.status.nothing.here", object("CipherscaleUser", 1, nil))
		Expect(err).To(HaveOccurred())
	})
})
