package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// assertNothingListed checks that the state root has no container at all.
func assertNothingListed(t *testing.T, e *env) {
	t.Helper()
	if r := e.berth("list", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("expected list -q to succeed with no containers, got %s", r)
	}
	if ents, _ := os.ReadDir(e.root); len(ents) > 0 {
		var names []string
		for _, ent := range ents {
			names = append(names, ent.Name())
		}
		t.Errorf("expected the state root %s to be empty, it has %v", e.root, names)
	}
}

func wantStderr(t *testing.T, r result, re, what string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(r.stderr) {
		t.Errorf("%s: expected the error on stderr to match %s (name the bad field or argument), got %s", what, re, r)
	}
}

func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	m[keys[len(keys)-1]] = v
}

func deletePath(m map[string]any, path string) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	delete(m, keys[len(keys)-1])
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	missingRootfs := "/nonexistent-rootfs-" + token()
	missingHook := "/nonexistent-hook-" + token()
	cases := []struct {
		name   string
		raw    string               // config.json as is, if set
		modify func(map[string]any) // else the test config changed by this
		want   string               // regexp the error must match
	}{
		{name: "malformed JSON", raw: `{"ociVersion": "1.0.2", "process": {"args": ["sh"]`, want: `(?i)json`},
		{name: "missing ociVersion", modify: func(m map[string]any) { delete(m, "ociVersion") }, want: `ociVersion`},
		{name: "ociVersion 2.0.0", modify: func(m map[string]any) { m["ociVersion"] = "2.0.0" }, want: `ociVersion|2\.0\.0`},
		{name: "missing root.path", modify: func(m map[string]any) { deletePath(m, "root.path") }, want: `(?i)root\.?path|rootfs|root (is|must)`},
		{name: "missing process.args", modify: func(m map[string]any) { deletePath(m, "process.args") }, want: `(?i)args`},
		{name: "process.args a string", modify: func(m map[string]any) { setPath(m, "process.args", "sleep 10") }, want: `(?i)args`},
		{name: "missing rootfs dir", modify: func(m map[string]any) { setPath(m, "root.path", missingRootfs) }, want: `(?i)rootfs|` + regexp.QuoteMeta(missingRootfs)},
		{name: "hook path does not exist", modify: func(m map[string]any) {
			m["hooks"] = map[string]any{"createRuntime": []any{map[string]any{"path": missingHook}}}
		}, want: `(?i)hook|` + regexp.QuoteMeta(missingHook)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			config := []byte(c.raw)
			if c.raw == "" {
				m := e.rawSpec()
				c.modify(m)
				var err error
				if config, err = json.MarshalIndent(m, "", "\t"); err != nil {
					t.Fatal(err)
				}
			}
			id := e.newID()
			r := e.berth("create", "-b", e.rawBundle(config), id)
			wantFail(t, r, "create with "+c.name)
			wantStderr(t, r, c.want, "create with "+c.name)
			assertNoLeftovers(t, e.root, id)
			assertNothingListed(t, e)
		})
	}
}

func TestBadContainerID(t *testing.T) {
	t.Parallel()
	slashed := randomID("bt-") + "/" + randomID("bt-")
	for _, c := range []struct{ name, id string }{{"empty", ""}, {"slash", slashed}, {"dotdot", ".."}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			what := "create with container id " + strconv.Quote(c.id)
			r := e.berth("create", "-b", e.bundle(), c.id)
			wantFail(t, r, what)
			want := `(?i)\bid\b`
			if strings.Contains(c.id, "/") {
				want += "|" + regexp.QuoteMeta(c.id)
			}
			wantStderr(t, r, want, what)
			for _, part := range strings.Split(c.id, "/") {
				if part != "" && part != ".." {
					assertNoLeftovers(t, e.root, part)
				}
			}
			if exists(filepath.Join(e.base, "state.json")) || exists(filepath.Join(e.base, "exec.fifo")) {
				t.Errorf("create with id %q wrote container state outside the state root (in %s)", c.id, e.base)
			}
			assertNothingListed(t, e)
		})
	}
}

func TestDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	id := e.newID()
	e.mustBerth("create", "-b", bundle, id)
	first := e.state(id)
	r := e.berth("create", "-b", e.bundle(args("true")), id)
	wantFail(t, r, "second create with the same id")
	wantStderr(t, r, regexp.QuoteMeta(id)+`|(?i)exist`, "second create with the same id")
	if st := e.state(id); st.Status != "created" || st.Pid != first.Pid || st.Bundle != bundle {
		t.Errorf("after a refused duplicate create: expected the first container unchanged (%+v), got %+v", first, st)
	}
	e.mustBerth("start", id)
	if st := e.status(id); st != "running" {
		t.Errorf("expected the first container to start after the refused duplicate, got %s", st)
	}
	e.mustBerth("delete", "-f", id)
	assertNoLeftovers(t, e.root, id)
	assertNothingListed(t, e)
}

func TestBadKillSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	for _, sig := range []string{"FOO", "SIGFOO", "-1x"} {
		r := e.berth("kill", id, sig)
		wantFail(t, r, "kill with signal "+sig)
		wantStderr(t, r, regexp.QuoteMeta(sig), "kill with signal "+sig)
	}
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after kills with bad signals: expected the container still running with pid %d, got %+v", pid, st)
	}
	e.mustBerth("delete", "-f", id)
	assertNoLeftovers(t, e.root, id)
	assertNothingListed(t, e)
}

func TestExecBadProcessJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	before := processesInCgroupOf(id)
	bad := e.writeFile("process.json", `{"args": ["true"`)
	r := e.berth("exec", "-p", bad, id)
	wantFail(t, r, "exec -p with a process.json that does not parse")
	wantStderr(t, r, `(?i)json`, "exec -p with a bad process.json")
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after a failed exec: expected the container still running with pid %d, got %+v", pid, st)
	}
	if after := processesInCgroupOf(id); len(after) != len(before) {
		t.Errorf("after a failed exec: expected the container's processes %v, got %v", before, after)
	}
	e.mustBerth("delete", "-f", id)
	assertNoLeftovers(t, e.root, id)
	assertNothingListed(t, e)
}
