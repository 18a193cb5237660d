package integration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

var hookStages = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// shHook is a hook running a /bin/sh script (the host's sh for hooks run in
// the runtime's namespace, busybox's for startContainer).
func shHook(script string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}}
}

// addHook appends h to the hooks of stage.
func addHook(s *specs.Spec, stage string, h specs.Hook) {
	if s.Hooks == nil {
		s.Hooks = &specs.Hooks{}
	}
	switch stage {
	case "prestart":
		s.Hooks.Prestart = append(s.Hooks.Prestart, h) //nolint:staticcheck // prestart is deprecated but still a hook
	case "createRuntime":
		s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, h)
	case "createContainer":
		s.Hooks.CreateContainer = append(s.Hooks.CreateContainer, h)
	case "startContainer":
		s.Hooks.StartContainer = append(s.Hooks.StartContainer, h)
	case "poststart":
		s.Hooks.Poststart = append(s.Hooks.Poststart, h)
	case "poststop":
		s.Hooks.Poststop = append(s.Hooks.Poststop, h)
	default:
		panic("unknown hook stage " + stage)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// readHookState parses the state a hook wrote, waiting for it to be complete.
func readHookState(t *testing.T, path string) specs.State {
	t.Helper()
	var s specs.State
	var data []byte
	if !poll(func() bool {
		data, _ = os.ReadFile(path)
		return json.Unmarshal(data, &s) == nil
	}) {
		t.Fatalf("expected the hook to write its OCI state to %s within %v, got %q", path, waitTimeout, data)
	}
	return s
}

func TestHooksAllStages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.mkdir("hookout")
	// startContainer runs inside the container after pivot_root: its
	// output dir is a bind mount of out at /hookout in a private rootfs.
	rootfs := e.privateRootfs()
	if err := os.Mkdir(filepath.Join(rootfs, "hookout"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := e.bundle(func(s *specs.Spec) {
		s.Root = &specs.Root{Path: rootfs, Readonly: false}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hookout", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		for _, stage := range hookStages {
			dir := out
			if stage == "startContainer" {
				dir = "/hookout"
			}
			addHook(s, stage, shHook("cat > "+dir+"/"+stage+".json"))
		}
	})
	cid := e.newID()
	file := func(stage string) string { return filepath.Join(out, stage+".json") }
	check := func(stage, wantStatus string) {
		t.Helper()
		st := readHookState(t, file(stage))
		if st.ID != cid || st.Bundle != bundle || st.Status != specs.ContainerState(wantStatus) {
			t.Errorf("%s hook: expected the state of %s with bundle %s and status %s, got %+v", stage, cid, bundle, wantStatus, st)
		}
		if stage != "poststop" && st.Pid <= 0 {
			t.Errorf("%s hook: expected pid > 0, got %d", stage, st.Pid)
		}
		if st.Version == "" {
			t.Errorf("%s hook: expected ociVersion in the state, got %+v", stage, st)
		}
	}

	e.mustBerth("create", "-b", bundle, cid)
	for _, stage := range []string{"prestart", "createRuntime", "createContainer"} {
		if !exists(file(stage)) {
			t.Errorf("after create: expected the %s hook to have run", stage)
		}
	}
	for _, stage := range []string{"startContainer", "poststart", "poststop"} {
		if exists(file(stage)) {
			t.Errorf("after create: expected the %s hook not to have run yet", stage)
		}
	}
	// prestart hooks are the spec 1.0 hooks run "after start is called":
	// they see "created", the later createRuntime/createContainer "creating".
	check("prestart", "created")
	for _, stage := range []string{"createRuntime", "createContainer"} {
		check(stage, "creating")
	}

	e.mustBerth("start", cid)
	check("startContainer", "created")
	check("poststart", "running")
	if exists(file("poststop")) {
		t.Errorf("before delete: expected the poststop hook not to have run")
	}

	e.mustBerth("kill", cid, "KILL")
	e.waitStatus(cid, "stopped")
	e.mustBerth("delete", cid)
	check("poststop", "stopped")
	assertNoLeftovers(t, e.root, cid)
}

// markerHook is a poststop hook that creates a marker file.
func (e *env) markerHook() (specs.Hook, string) {
	marker := filepath.Join(e.mkdir("marker"), "poststop-ran")
	return shHook("touch " + marker), marker
}

func TestHookTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		testenv.Missing(t, "no sleep binary on the host for the slow hook")
	}
	poststop, marker := e.markerHook()
	bundle := e.bundle(func(s *specs.Spec) {
		addHook(s, "prestart", specs.Hook{Path: sleep, Args: []string{"sleep", "30"}, Timeout: ptr(1)})
		addHook(s, "poststop", poststop)
	})
	id := e.newID()
	r := e.berth("create", "-b", bundle, id)
	wantFail(t, r, "create with a prestart hook that outlives its 1s timeout")
	if !containsFold(r.stderr, "hook") && !containsFold(r.stderr, "prestart") {
		t.Errorf("expected the error to mention the hook, got %s", r)
	}
	wantFail(t, e.berth("state", id), "state of a container whose create failed")
	assertNoLeftovers(t, e.root, id)
	if !exists(marker) {
		t.Errorf("after a failed create: expected the poststop hook to have run (no %s)", marker)
	}
}

func TestHookFailure(t *testing.T) {
	t.Parallel()
	for _, stage := range hookStages[:5] {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			poststop, marker := e.markerHook()
			bundle := e.bundle(func(s *specs.Spec) {
				// /bin/sh exists on the host and in the rootfs.
				addHook(s, stage, shHook("exit 1"))
				addHook(s, "poststop", poststop)
			})
			id := e.newID()
			r := e.berth("create", "-b", bundle, id)
			what := "create with a failing " + stage + " hook"
			if stage == "startContainer" || stage == "poststart" {
				wantCode(t, r, 0, "create with a "+stage+" hook (it runs at start)")
				r = e.berth("start", id)
				what = "start with a failing " + stage + " hook"
			}
			wantFail(t, r, what)
			if !containsFold(r.stderr, stage) {
				t.Errorf("%s: expected the error to name the %s hook, got %s", what, stage, r)
			}
			wantFail(t, e.berth("state", id), "state after "+what)
			assertNoLeftovers(t, e.root, id)
			if !exists(marker) {
				t.Errorf("after %s: expected the poststop hook to have run (no %s)", what, marker)
			}
			if r := e.mustBerth("list", "-q"); r.stdout != "" {
				t.Errorf("after %s: expected list -q to be empty, got %q", what, r.stdout)
			}
		})
	}
}

func TestPoststopHookFailureDoesNotFailDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle(func(s *specs.Spec) { addHook(s, "poststop", shHook("exit 1")) }))
	e.mustBerth("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	wantCode(t, e.berth("delete", id), 0, "delete with a failing poststop hook")
	wantFail(t, e.berth("state", id), "state after delete")
	assertNoLeftovers(t, e.root, id)
}
