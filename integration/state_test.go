package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

var stateKeys = []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}

// rawJSONObject parses a JSON object keeping its values raw.
func rawJSONObject(t *testing.T, data, what string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("%s: expected a JSON object, got %v: %q", what, err, data)
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsonType names the JSON type of a raw value.
func jsonType(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "bool"
	case strings.HasPrefix(s, `"`):
		return "string"
	case strings.HasPrefix(s, "{"):
		return "object"
	case strings.HasPrefix(s, "["):
		return "array"
	default:
		return "number"
	}
}

func checkStateShape(t *testing.T, raw map[string]json.RawMessage, withAnnotations bool, what string) {
	t.Helper()
	want := slices.Clone(stateKeys)
	if withAnnotations {
		want = append(want, "annotations")
	}
	sort.Strings(want)
	if got := sortedKeys(raw); !slices.Equal(got, want) {
		t.Errorf("%s: expected exactly the keys %v, got %v", what, want, got)
	}
	types := map[string]string{"ociVersion": "string", "id": "string", "pid": "number", "status": "string",
		"bundle": "string", "rootfs": "string", "created": "string", "owner": "string", "annotations": "object"}
	for k, v := range raw {
		if wt, ok := types[k]; ok && jsonType(v) != wt {
			t.Errorf("%s: expected %s to be a JSON %s, got %s", what, k, wt, v)
		}
	}
	var created string
	if err := json.Unmarshal(raw["created"], &created); err == nil {
		if _, err := time.Parse(time.RFC3339Nano, created); err != nil {
			t.Errorf("%s: expected created to be RFC3339Nano, got %q: %v", what, created, err)
		}
	}
}

func TestStateAndTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	annotations := map[string]string{"org.berth.test": "yes"}
	bundle := e.bundle(func(s *specs.Spec) { s.Annotations = annotations })
	id := e.newID()
	e.mustBerth("create", "-b", bundle, id)

	raw := rawJSONObject(t, e.mustBerth("state", id).stdout, "state of a created container")
	checkStateShape(t, raw, true, "state of a created container")
	st := e.state(id)
	if st.ID != id || st.Status != "created" || st.Pid <= 0 || st.Bundle != bundle || st.Rootfs != e.rootfs {
		t.Errorf("state after create: expected id %s, status created, pid > 0, bundle %s, rootfs %s; got %+v", id, bundle, e.rootfs, st)
	}
	// Like runc 1.5, the state complies with (and reports) the runtime-spec
	// version the runtime implements, whatever the bundle's ociVersion.
	if want := specVersion(t, e.bin); st.OCIVersion != want {
		t.Errorf("state: expected ociVersion %q (the spec: line of --version), got %q", want, st.OCIVersion)
	}
	if fmt.Sprint(st.Annotations) != fmt.Sprint(annotations) {
		t.Errorf("state: expected annotations %v, got %v", annotations, st.Annotations)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); err != nil {
		t.Errorf("state: expected the created container's pid %d to be alive: %v", st.Pid, err)
	}

	e.mustBerth("start", id)
	running := e.state(id)
	if running.Status != "running" || running.Pid != st.Pid {
		t.Errorf("after start: expected status running with pid %d, got %+v", st.Pid, running)
	}
	if running.Created != st.Created {
		t.Errorf("after start: expected created to stay %q, got %q", st.Created, running.Created)
	}

	e.mustBerth("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	raw = rawJSONObject(t, e.mustBerth("state", id).stdout, "state of a stopped container")
	checkStateShape(t, raw, true, "state of a stopped container")
	if stopped := e.state(id); stopped.Pid != 0 {
		t.Errorf("stopped container: expected pid 0, got %d", stopped.Pid)
	}
	e.mustBerth("delete", id)
	r := e.berth("state", id)
	wantCode(t, r, 1, "state after delete")
	assertNoLeftovers(t, e.root, id)
}

func TestStateWithoutAnnotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle(func(s *specs.Spec) { s.Annotations = nil }))
	raw := rawJSONObject(t, e.mustBerth("state", id).stdout, "state of a running container without annotations")
	checkStateShape(t, raw, false, "state without annotations")
}

// TestStateMatchesRunc compares berth's state with Debian's runc's for the
// same bundle.
func TestStateMatchesRunc(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const runc = "/usr/sbin/runc"
	if _, err := os.Stat(runc); err != nil {
		testenv.Missing(t, "%s is not installed (apt-get install runc), nothing to compare with", runc)
	}
	bundle := e.bundle(func(s *specs.Spec) { s.Annotations = map[string]string{"org.berth.compare": "1"} })
	runcRoot := e.mkdir("runc-root")
	runcID := randomID("bt-")
	e.track(runc, runcRoot, runcID)
	id := e.newID()

	e.mustBerth("create", "-b", bundle, id)
	rr := runCmd(t, runOpts{}, runc, "--root", runcRoot, "create", "-b", bundle, runcID)
	if rr.code != 0 {
		t.Fatalf("runc create failed, cannot compare: %s", rr)
	}
	compare := func(phase string) {
		t.Helper()
		ours := rawJSONObject(t, e.mustBerth("state", id).stdout, "berth state "+phase)
		rs := runCmd(t, runOpts{}, runc, "--root", runcRoot, "state", runcID)
		theirs := rawJSONObject(t, rs.stdout, "runc state "+phase)
		if a, b := sortedKeys(ours), sortedKeys(theirs); !slices.Equal(a, b) {
			t.Errorf("%s: expected berth's state keys %v to equal runc's %v", phase, a, b)
		}
		for k, v := range theirs {
			if jsonType(ours[k]) != jsonType(v) {
				t.Errorf("%s: key %s: expected JSON type %s like runc, got %s", phase, k, jsonType(v), jsonType(ours[k]))
			}
		}
		for _, k := range []string{"status", "bundle", "rootfs", "annotations"} {
			if string(ours[k]) != string(theirs[k]) {
				t.Errorf("%s: key %s: expected %s like runc, got %s", phase, k, theirs[k], ours[k])
			}
		}
		// Both report the runtime-spec version they implement (runc sets it
		// from its own specs.Version): equal when they implement the same.
		if ourSpec, theirSpec := specVersion(t, e.bin), specVersion(t, runc); ourSpec == theirSpec {
			if string(ours["ociVersion"]) != string(theirs["ociVersion"]) {
				t.Errorf("%s: ociVersion: expected %s like runc (both implement spec %s), got %s", phase, theirs["ociVersion"], ourSpec, ours["ociVersion"])
			}
		} else if want := strconv.Quote(ourSpec); string(ours["ociVersion"]) != want {
			t.Errorf("%s: ociVersion: runc implements spec %s and reports %s; expected berth to report its own spec version %s, got %s",
				phase, theirSpec, theirs["ociVersion"], want, ours["ociVersion"])
		}
		checkStateShape(t, ours, true, "berth state "+phase)
	}
	compare("created")
	e.mustBerth("start", id)
	if rr := runCmd(t, runOpts{}, runc, "--root", runcRoot, "start", runcID); rr.code != 0 {
		t.Fatalf("runc start failed: %s", rr)
	}
	compare("running")
}

// specVersion is the runtime-spec version a runtime implements, from the
// "spec: " line of its --version.
func specVersion(t *testing.T, bin string) string {
	t.Helper()
	r := runCmd(t, runOpts{}, bin, "--version")
	for _, l := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "spec: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("expected a spec: line in the output of %s --version, got %s", bin, r)
	return ""
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// berth-net keeps its state in the runtime's root by default
	// (/run/berth/net), beside lock files: neither is a container.
	if err := os.MkdirAll(filepath.Join(e.root, "net", "records"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "firewall.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.mustBerth("list", "-f", "json")
	if strings.TrimSpace(r.stdout) != "null" || r.stderr != "" {
		t.Errorf("list -f json without containers (root holding net/ and a lock file): expected exactly null and no warning, got %q, stderr %q", r.stdout, r.stderr)
	}
	r = e.mustBerth("list", "-q")
	if strings.TrimSpace(r.stdout) != "" {
		t.Errorf("list -q without containers: expected no output, got %q", r.stdout)
	}

	created := e.newID()
	bundle := e.bundle()
	e.mustBerth("create", "-b", bundle, created)
	running, runningPid := e.runDetached(bundle)

	// Table: header and one row per container.
	for _, a := range [][]string{{"list"}, {"list", "-f", "table"}} {
		r = e.mustBerth(a...)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}) {
			t.Errorf("%v: expected header ID PID STATUS BUNDLE CREATED OWNER, got %q", a, lines[0])
		}
		rows := map[string][]string{}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) > 0 {
				rows[f[0]] = f
			}
		}
		if len(rows) != 2 {
			t.Errorf("%v: expected 2 rows, got %q", a, r.stdout)
		}
		if row := rows[created]; len(row) < 5 || row[2] != "created" || row[3] != bundle {
			t.Errorf("%v: expected row %s with status created and bundle %s, got %q", a, created, bundle, row)
		}
		if row := rows[running]; len(row) < 5 || row[1] != strconv.Itoa(runningPid) || row[2] != "running" {
			t.Errorf("%v: expected row %s with pid %d and status running, got %q", a, running, runningPid, row)
		}
	}

	r = e.mustBerth("list", "-q")
	ids := strings.Fields(r.stdout)
	sort.Strings(ids)
	want := []string{created, running}
	sort.Strings(want)
	if !slices.Equal(ids, want) || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("list -q: expected exactly the ids %v one per line, got %q", want, r.stdout)
	}

	r = e.mustBerth("list", "-f", "json")
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("list -f json: expected a JSON array, got %v: %q", err, r.stdout)
	}
	if len(entries) != 2 {
		t.Fatalf("list -f json: expected 2 entries, got %d: %s", len(entries), r.stdout)
	}
	for _, ent := range entries {
		checkStateShape(t, ent, false, "list -f json entry")
		var got ociState
		b, _ := json.Marshal(ent)
		_ = json.Unmarshal(b, &got)
		st := e.state(got.ID)
		if got.Status != st.Status || got.Pid != st.Pid || got.Bundle != st.Bundle || got.Rootfs != st.Rootfs || got.Created != st.Created {
			t.Errorf("list -f json entry %s: expected the same values as state %+v, got %+v", got.ID, st, got)
		}
	}
}

func TestPs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())

	for _, a := range [][]string{{"ps", id}, {"ps", "-f", "table", id}} {
		r := e.mustBerth(a...)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		col := slices.Index(strings.Fields(lines[0]), "PID")
		if col < 0 {
			t.Fatalf("%v: expected a header with a PID column, got %q", a, r.stdout)
		}
		found := false
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > col && f[col] == strconv.Itoa(pid) {
				found = true
			}
		}
		if !found {
			t.Errorf("%v: expected a row with the init's pid %d, got %q", a, pid, r.stdout)
		}
	}

	r := e.mustBerth("ps", "-f", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(r.stdout), &pids); err != nil {
		t.Fatalf("ps -f json: expected a JSON array of ints, got %v: %q", err, r.stdout)
	}
	if !slices.Contains(pids, pid) {
		t.Errorf("ps -f json: expected the init's pid %d in %v", pid, pids)
	}
}
