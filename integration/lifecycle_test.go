package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRunPassesExitCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	r := e.berth("run", "-b", e.bundle(shell("exit 7")), id)
	wantCode(t, r, 7, "run of sh -c 'exit 7'")
	// Without --keep, run deletes the container when its process exits.
	wantCode(t, e.berth("state", id), 1, "state after run without --keep")
	assertNoLeftovers(t, e.root, id)
}

func TestRunKeep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	r := e.berth("run", "--keep", "-b", e.bundle(shell("exit 0")), id)
	wantCode(t, r, 0, "run --keep")
	if st := e.state(id); st.Status != "stopped" || st.Pid != 0 {
		t.Errorf("run --keep: expected the container kept as stopped with pid 0, got %+v", st)
	}
	e.mustBerth("delete", id)
	assertNoLeftovers(t, e.root, id)
}

func TestRunDetach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	for _, flag := range []string{"-d", "--detach"} {
		id := e.newID()
		e.mustBerth("run", flag, "-b", bundle, id)
		if st := e.state(id); st.Status != "running" {
			t.Errorf("run %s: expected the container running after run returns, got %+v", flag, st)
		}
	}
}

func TestRunKilledBySignalExits137(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	run := e.startBerth(runOpts{}, "run", "-b", e.bundle(args("sleep", "100")), id)
	e.waitStatus(id, "running")
	e.mustBerth("kill", id, "KILL")
	wantCode(t, run.wait(), 137, "foreground run whose container is killed with KILL")
}

func TestKillSignalForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	for _, sig := range []string{"9", "KILL", "SIGKILL", "kill"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			e := e.with(t)
			id, _ := e.runDetached(bundle)
			e.mustBerth("kill", id, sig)
			e.waitStatus(id, "stopped")
		})
	}
}

// containerd's shim sends `kill --all ID KILL` on its way to delete, also
// to a container that has already stopped: runc takes that as success, and
// a plain kill of a stopped container as an error.
func TestKillAllOfStoppedContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle())
	e.mustBerth("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
	wantCode(t, e.berth("kill", "--all", id, "KILL"), 0, "kill --all of a stopped container")
	wantCode(t, e.berth("kill", id, "KILL", "-a"), 0, "kill ID KILL -a of a stopped container")
	wantFail(t, e.berth("kill", id, "KILL"), "kill (without --all) of a stopped container")
}

func TestKillDefaultSignalIsTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	r := e.mustBerth("run", "-d", "-b", e.bundle(shell(`trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done`)), id)
	// The container's stdout is run's: wait until the trap is set.
	waitFileContains(t, r.outPath, "ready")
	e.mustBerth("kill", id)
	e.waitStatus(id, "stopped")
}

func TestKillUnknownSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle())
	r := e.berth("kill", id, "FOO")
	wantFail(t, r, "kill with unknown signal FOO")
	wantContains(t, r.stderr, "FOO", "error of kill with an unknown signal")
	if st := e.status(id); st != "running" {
		t.Errorf("after kill with an unknown signal: expected the container still running, got %s", st)
	}
}

func TestFailingCommandsExit1(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	missing := randomID("nosuch-")
	for _, a := range [][]string{{"state", missing}, {"start", missing}, {"kill", missing}, {"kill", missing, "KILL"},
		{"pause", missing}, {"resume", missing}, {"ps", missing}} {
		r := e.berth(a...)
		wantCode(t, r, 1, strings.Join(a[:1], " ")+" of a missing container")
		if strings.TrimSpace(r.stderr) == "" {
			t.Errorf("%s of a missing container: expected an error message on stderr, got none", a[0])
		}
	}
	// runc exits 255 when exec fails; any failure will do.
	wantFail(t, e.berth("exec", missing, "true"), "exec in a missing container")
	wantFail(t, e.berth("delete", missing), "delete (without -f) of a missing container")
	wantCode(t, e.berth("delete", "-f", missing), 0, "delete -f of a missing container")
	wantCode(t, e.berth("delete", "--force", missing), 0, "delete --force of a missing container")
}

func TestDeleteRunningFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	wantFail(t, e.berth("delete", id), "delete of a running container")
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after a refused delete: expected the container still running with pid %d, got %+v", pid, st)
	}
	e.mustBerth("delete", "-f", id)
	wantCode(t, e.berth("state", id), 1, "state after delete -f")
	assertNoLeftovers(t, e.root, id)
}

func TestDeleteCreatedFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	e.mustBerth("create", "-b", e.bundle(), id)
	// runtime-spec: deleting a container that is not stopped must fail and
	// have no effect.
	wantFail(t, e.berth("delete", id), "delete of a created (not started) container")
	if st := e.status(id); st != "created" {
		t.Errorf("after a refused delete: expected the container still created, got %s", st)
	}
	e.mustBerth("delete", "-f", id)
	assertNoLeftovers(t, e.root, id)
}

func TestPauseResumeAndForceDeletePaused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	e.mustBerth("pause", id)
	if st := e.status(id); st != "paused" {
		t.Errorf("after pause: expected status paused, got %s", st)
	}
	if fs := readCgroup(t, pid, "freezer", "freezer.state"); fs != "FROZEN" {
		t.Errorf("after pause: expected freezer.state FROZEN, got %q", fs)
	}
	e.mustBerth("resume", id)
	if st := e.status(id); st != "running" {
		t.Errorf("after resume: expected status running, got %s", st)
	}
	if fs := readCgroup(t, pid, "freezer", "freezer.state"); fs != "THAWED" {
		t.Errorf("after resume: expected freezer.state THAWED, got %q", fs)
	}

	e.mustBerth("pause", id)
	wantFail(t, e.berth("delete", id), "delete of a paused container")
	e.mustBerth("delete", "-f", id)
	wantCode(t, e.berth("state", id), 1, "state after delete -f of a paused container")
	assertNoLeftovers(t, e.root, id)
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("expected the pid file %s: %v", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %s: expected a number, got %q", path, data)
	}
	return pid
}

func TestPidFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	dir := e.mkdir("pid")

	id := e.newID()
	e.mustBerth("create", "--pid-file", filepath.Join(dir, "create.pid"), "-b", bundle, id)
	if got, st := readPidFile(t, filepath.Join(dir, "create.pid")), e.state(id); got != st.Pid {
		t.Errorf("create --pid-file: expected the state's pid %d, got %d", st.Pid, got)
	}

	id2 := e.newID()
	e.mustBerth("run", "-d", "--pid-file", filepath.Join(dir, "run.pid"), "-b", bundle, id2)
	if got, st := readPidFile(t, filepath.Join(dir, "run.pid")), e.state(id2); got != st.Pid {
		t.Errorf("run -d --pid-file: expected the state's pid %d, got %d", st.Pid, got)
	}

	// A relative pid file path is relative to the current directory.
	id3 := e.newID()
	r := e.berthOpts(runOpts{dir: dir}, "create", "--pid-file", "rel.pid", "-b", bundle, id3)
	wantCode(t, r, 0, "create with a relative --pid-file")
	if got, st := readPidFile(t, filepath.Join(dir, "rel.pid")), e.state(id3); got != st.Pid {
		t.Errorf("create --pid-file rel.pid: expected the state's pid %d, got %d", st.Pid, got)
	}
}

// extraFile returns an open file with the given content, for fd passing.
func (e *env) extraFile(content string) *os.File {
	e.t.Helper()
	f, err := os.Open(e.writeFile("extra", content))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

func TestPreserveFds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle(shell("cat /proc/self/fd/3"))

	t.Run("run", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		tok := token()
		id := e.newID()
		r := e.berthOpts(runOpts{extra: []*os.File{e.extraFile(tok)}}, "run", "--preserve-fds", "1", "-b", bundle, id)
		wantCode(t, r, 0, "run --preserve-fds 1 of cat /proc/self/fd/3")
		wantContains(t, r.stdout, tok, "container output of fd 3")
	})
	t.Run("create", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		tok := token()
		id := e.newID()
		r := e.berthOpts(runOpts{extra: []*os.File{e.extraFile(tok)}}, "create", "--preserve-fds", "1", "-b", bundle, id)
		wantCode(t, r, 0, "create --preserve-fds 1")
		e.mustBerth("start", id)
		e.waitStatus(id, "stopped")
		// The container's stdout is create's stdout.
		waitFileContains(t, r.outPath, tok)
	})
}

// TestSocketActivation starts the runtime as systemd would for socket
// activation: LISTEN_FDS=1 and LISTEN_PID=<its pid> with the socket as fd 3.
// A shell that execs the runtime gives it its own pid in LISTEN_PID.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := token()
	listenFile := e.writeFile("listen", tok)
	id := e.newID()
	bundle := e.bundle(shell(`echo "fds=$LISTEN_FDS pid=$LISTEN_PID"; cat /proc/self/fd/3`))
	r := runCmd(t, runOpts{env: []string{"LISTEN_FILE=" + listenFile}}, "/bin/sh", "-c",
		`LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3<"$LISTEN_FILE"`, "sh", e.bin, "--root", e.root, "run", "-b", bundle, id)
	wantCode(t, r, 0, "run with LISTEN_FDS=1")
	wantContains(t, r.stdout, "fds=1 pid=1", "LISTEN_FDS and LISTEN_PID in the container")
	wantContains(t, r.stdout, tok, "the listen fd 3 in the container")
}

func TestCreateBundleForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	cases := []struct {
		name string
		args []string
		dir  string
	}{
		{"-b", []string{"create", "-b", bundle}, ""},
		{"--bundle", []string{"create", "--bundle", bundle}, ""},
		{"current directory", []string{"create"}, bundle},
		{"relative -b", []string{"create", "-b", filepath.Base(bundle)}, filepath.Dir(bundle)},
	}
	for _, c := range cases {
		id := e.newID()
		r := e.berthOpts(runOpts{dir: c.dir}, append(c.args, id)...)
		wantCode(t, r, 0, "create with bundle given as "+c.name)
		if r.code == 0 {
			if st := e.state(id); st.Bundle != bundle || st.Status != "created" {
				t.Errorf("create with bundle given as %s: expected status created and absolute bundle %s, got %+v", c.name, bundle, st)
			}
		}
	}
}

func TestNoPivot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := token()
	id := e.newID()
	r := e.berth("run", "--no-pivot", "-b", e.bundle(shell("echo "+tok+"; ls /")), id)
	wantCode(t, r, 0, "run --no-pivot")
	wantContains(t, r.stdout, tok, "output of a --no-pivot container")
	wantContains(t, r.stdout, "bin", "ls / of a --no-pivot container shows the rootfs")
	id2 := e.newID()
	e.mustBerth("create", "--no-pivot", "-b", e.bundle(), id2)
	e.mustBerth("start", id2)
}

// TestNoNewKeyring: by default the container's init joins a new session
// keyring named after the container (visible to root in /proc/keys);
// --no-new-keyring keeps the caller's.
func TestNoNewKeyring(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()
	id, _ := e.runDetached(bundle)
	keys, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skipf("/proc/keys is not readable here (%v): cannot see keyrings", err)
	}
	if !strings.Contains(string(keys), id) {
		t.Errorf("without --no-new-keyring: expected a session keyring named after %s in /proc/keys, got %q", id, keys)
	}

	id2 := e.newID()
	e.mustBerth("run", "-d", "--no-new-keyring", "-b", bundle, id2)
	e.waitStatus(id2, "running")
	keys, _ = os.ReadFile("/proc/keys")
	if strings.Contains(string(keys), id2) {
		t.Errorf("with --no-new-keyring: expected no keyring named after %s in /proc/keys, got %q", id2, keys)
	}
	id3 := e.newID()
	e.mustBerth("create", "--no-new-keyring", "-b", bundle, id3)
	keys, _ = os.ReadFile("/proc/keys")
	if strings.Contains(string(keys), id3) {
		t.Errorf("create --no-new-keyring: expected no keyring named after %s in /proc/keys, got %q", id3, keys)
	}
}
