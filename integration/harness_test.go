// Package integration runs berth, the runtime under test, against real
// containers on this machine's kernel. It needs root, the runtime binary in
// $BERTH_BINARY and a busybox bundle in $BERTH_BUNDLE (`make integration`
// sets both).
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

// defaultParallel is how many tests run at once unless -test.parallel is
// given. Most tests spend their time waiting on containers, not on the CPU,
// so more than GOMAXPROCS (2 on the CI machines) keeps the suite short.
const defaultParallel = "6"

// cmdTimeout bounds every runtime invocation that the test waits for.
const cmdTimeout = 60 * time.Second

// waitTimeout bounds every poll for a state change.
const waitTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit {
		_ = flag.Set("test.parallel", defaultParallel)
	}
	os.Exit(m.Run())
}

// shared is what one test (and its subtests) share: its directories and the
// containers it has to clean up.
type shared struct {
	bin    string // runtime under test
	base   string // private temp dir, removed last
	root   string // --root of the runtime under test
	rootfs string // absolute path of the shared, read-only busybox rootfs

	mu         sync.Mutex
	containers []tracked
}

type tracked struct {
	bin, root, id string
}

// env is a test's handle on the runtime. Methods report failures on t.
type env struct {
	t *testing.T
	*shared
}

var (
	baseSpecOnce sync.Once
	baseSpecRaw  []byte
	baseSpecErr  error
)

// requireEnv returns the runtime binary and bundle from the environment, or
// skips the test saying which variable is missing (fails it under CI=true).
func requireEnv(t *testing.T) (bin, bundle string) {
	t.Helper()
	bin, bundle = os.Getenv("BERTH_BINARY"), os.Getenv("BERTH_BUNDLE")
	switch {
	case bin == "":
		testenv.Missing(t, "BERTH_BINARY is not set: it must be the absolute path of the runtime binary under test (make integration sets it)")
	case bundle == "":
		testenv.Missing(t, "BERTH_BUNDLE is not set: it must be a busybox bundle directory with config.json and rootfs/ (make integration sets it)")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the integration tests run real containers and need root")
	}
	if !filepath.IsAbs(bin) {
		t.Fatalf("BERTH_BINARY=%q must be an absolute path", bin)
	}
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("BERTH_BINARY=%q is not an executable file (err=%v)", bin, err)
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "sh")); err != nil {
		t.Fatalf("BERTH_BUNDLE=%q has no rootfs/bin/sh: %v", bundle, err)
	}
	return bin, bundle
}

// newEnv prepares a private state root and temp dir for one test. Its
// cleanup force-deletes every container the test created and then asserts
// that nothing of them is left on the host.
func newEnv(t *testing.T) *env {
	t.Helper()
	bin, bundle := requireEnv(t)
	baseSpecOnce.Do(func() {
		baseSpecRaw, baseSpecErr = os.ReadFile(filepath.Join(bundle, "config.json"))
	})
	if baseSpecErr != nil {
		t.Fatalf("reading the bundle's config.json: %v", baseSpecErr)
	}
	// Short paths: unix socket paths are limited to 108 bytes.
	base, err := os.MkdirTemp("", "bt")
	if err != nil {
		t.Fatal(err)
	}
	sh := &shared{bin: bin, base: base, root: filepath.Join(base, "root"), rootfs: filepath.Join(bundle, "rootfs")}
	if err := os.Mkdir(sh.root, 0o700); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the temp dir goes after the containers.
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("removing the test's temp dir %s: %v (a leftover mount?)", base, err)
		}
	})
	e := &env{t: t, shared: sh}
	t.Cleanup(e.cleanupContainers)
	return e
}

// with returns the same environment reporting on another (sub)test.
func (e *env) with(t *testing.T) *env { return &env{t: t, shared: e.shared} }

func (e *env) cleanupContainers() {
	e.mu.Lock()
	cs := append([]tracked(nil), e.containers...)
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		res := runCmd(e.t, runOpts{}, c.bin, "--root", c.root, "delete", "-f", c.id)
		if res.code != 0 {
			e.t.Errorf("cleanup: %s delete -f %s: exit %d, stderr %q", filepath.Base(c.bin), c.id, res.code, res.stderr)
		}
		assertNoLeftovers(e.t, c.root, c.id)
	}
}

// newID returns a fresh container id (prefix bt-) and makes the test's
// cleanup delete that container and check for leftovers.
func (e *env) newID() string {
	id := randomID("bt-")
	e.track(e.bin, e.root, id)
	return id
}

func (e *env) track(bin, root, id string) {
	e.mu.Lock()
	e.containers = append(e.containers, tracked{bin: bin, root: root, id: id})
	e.mu.Unlock()
}

func randomID(prefix string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// token is a random marker for output checks.
func token() string { return randomID("tok") }

// mkdir makes a new directory inside the test's temp dir.
func (e *env) mkdir(prefix string) string {
	e.t.Helper()
	d, err := os.MkdirTemp(e.base, prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// writeFile writes a new file in the test's temp dir and returns its path.
func (e *env) writeFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.mkdir("f"), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// spec returns the bundle's config adjusted for tests: the shared rootfs by
// absolute path, read-only, no terminal, and `sleep 3600` as the process.
func (e *env) spec() *specs.Spec {
	e.t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(baseSpecRaw, &s); err != nil {
		e.t.Fatalf("parsing the bundle's config.json: %v", err)
	}
	s.Root = &specs.Root{Path: e.rootfs, Readonly: true}
	if s.Process == nil {
		e.t.Fatal("the bundle's config.json has no process")
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "3600"}
	return &s
}

// bundle writes a bundle dir whose config.json is e.spec() changed by mods.
func (e *env) bundle(mods ...func(*specs.Spec)) string {
	e.t.Helper()
	s := e.spec()
	for _, m := range mods {
		m(s)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.rawBundle(data)
}

// rawBundle writes a bundle dir with config.json exactly as given.
func (e *env) rawBundle(config []byte) string {
	e.t.Helper()
	dir := e.mkdir("bundle")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// rawSpec returns the adjusted base config as a generic JSON object, for
// tests that need configs which do not fit specs.Spec.
func (e *env) rawSpec() map[string]any {
	e.t.Helper()
	data, err := json.Marshal(e.spec())
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// privateRootfs returns a writable copy of the rootfs, hardlinked to the
// shared one: only create new files in it, never write to existing ones.
func (e *env) privateRootfs() string {
	e.t.Helper()
	dst := filepath.Join(e.mkdir("rootfs"), "rootfs")
	if _, err := exec.Command("cp", "-al", e.rootfs, dst).CombinedOutput(); err != nil {
		// Hardlinks cannot cross filesystems: make a real copy instead.
		_ = os.RemoveAll(dst)
		if out, err := exec.Command("cp", "-a", e.rootfs, dst).CombinedOutput(); err != nil {
			e.t.Fatalf("cp -a %s %s: %v: %s", e.rootfs, dst, err, out)
		}
	}
	return dst
}

func args(a ...string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = a }
}

func shell(script string) func(*specs.Spec) { return args("sh", "-c", script) }

// ---- running commands -------------------------------------------------

type runOpts struct {
	stdin   io.Reader
	extra   []*os.File // become fds 3, 4, ...
	env     []string   // added to the test's environment
	dir     string
	timeout time.Duration
}

type result struct {
	args    []string
	stdout  string
	stderr  string
	code    int    // exit code; -1 when killed by a signal or not started
	outPath string // file the command's stdout went to (detached containers keep writing there)
	errPath string
}

func (r result) String() string {
	return fmt.Sprintf("%q: exit %d\nstdout: %q\nstderr: %q", r.args, r.code, r.stdout, r.stderr)
}

// combined is stdout and stderr together, for error message checks.
func (r result) combined() string { return r.stdout + r.stderr }

// berth runs the runtime with --root of this test and waits for it.
func (e *env) berth(a ...string) result {
	e.t.Helper()
	return e.berthOpts(runOpts{}, a...)
}

func (e *env) berthOpts(o runOpts, a ...string) result {
	e.t.Helper()
	return runCmd(e.t, o, e.bin, append([]string{"--root", e.root}, a...)...)
}

// mustBerth runs the runtime and fails the test unless it exits 0.
func (e *env) mustBerth(a ...string) result {
	e.t.Helper()
	r := e.berth(a...)
	if r.code != 0 {
		e.t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

// proc is a command running in the background.
type proc struct {
	cmd     *exec.Cmd
	done    chan result
	outPath string // where its stdout goes, readable while it runs
}

// startCmd starts a command whose stdout and stderr go to files (so that a
// detached container holding them never blocks the wait) and returns at
// once. The command is killed after o.timeout (default cmdTimeout).
func startCmd(t *testing.T, o runOpts, bin string, a ...string) *proc {
	t.Helper()
	timeout := o.timeout
	if timeout == 0 {
		timeout = cmdTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, bin, a...)
	cmd.Stdin = o.stdin
	cmd.ExtraFiles = o.extra
	cmd.Dir = o.dir
	cmd.Env = append(hermeticEnviron(), o.env...)
	outF, err1 := os.CreateTemp("", "bt-out")
	errF, err2 := os.CreateTemp("", "bt-err")
	if err := errors.Join(err1, err2); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(outF.Name()); os.Remove(errF.Name()) })
	cmd.Stdout, cmd.Stderr = outF, errF
	res := result{args: append([]string{bin}, a...), code: -1, outPath: outF.Name(), errPath: errF.Name()}
	p := &proc{cmd: cmd, done: make(chan result, 1), outPath: outF.Name()}
	if err := cmd.Start(); err != nil {
		cancel()
		outF.Close()
		errF.Close()
		res.stderr = err.Error()
		p.done <- res
		return p
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		outF.Close()
		errF.Close()
		var ee *exec.ExitError
		switch {
		case err == nil:
			res.code = 0
		case errors.As(err, &ee):
			res.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				res.stderr = fmt.Sprintf("[killed by signal %v] ", ws.Signal())
			}
		default:
			res.stderr = err.Error() + " "
		}
		if ctx.Err() != nil {
			res.stderr += fmt.Sprintf("[killed after timeout %v] ", timeout)
		}
		out, _ := os.ReadFile(res.outPath)
		errOut, _ := os.ReadFile(res.errPath)
		res.stdout = string(out)
		res.stderr += string(errOut)
		p.done <- res
	}()
	return p
}

// wait returns the command's result once it exits (it is killed at its
// timeout, so this does not hang).
func (p *proc) wait() result { return <-p.done }

// hermeticEnviron is the test's environment without the variables that
// change how the runtime behaves (systemd notify and socket activation).
func hermeticEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
		default:
			env = append(env, kv)
		}
	}
	return env
}

func runCmd(t *testing.T, o runOpts, bin string, a ...string) result {
	t.Helper()
	return startCmd(t, o, bin, a...).wait()
}

// startBerth runs the runtime in the background (for foreground `run`).
func (e *env) startBerth(o runOpts, a ...string) *proc {
	e.t.Helper()
	return startCmd(e.t, o, e.bin, append([]string{"--root", e.root}, a...)...)
}

// ---- container state ----------------------------------------------------

// ociState is the runtime's `state` output.
type ociState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     string            `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations"`
}

func (e *env) state(id string) ociState {
	e.t.Helper()
	r := e.mustBerth("state", id)
	var s ociState
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state %s printed no JSON state: %v\n%s", id, err, r)
	}
	return s
}

func (e *env) status(id string) string {
	e.t.Helper()
	return e.state(id).Status
}

// waitStatus polls `state` until the container has the wanted status.
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	var last string
	ok := poll(func() bool {
		r := e.berth("state", id)
		var s ociState
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &s) == nil {
			last = s.Status
		} else {
			last = "(state failed: " + r.stderr + ")"
		}
		return last == want
	})
	if !ok {
		e.t.Fatalf("container %s: expected status %q within %v, last status %s", id, want, waitTimeout, last)
	}
}

// poll calls f until it returns true or waitTimeout passes.
func poll(f func() bool) bool {
	deadline := time.Now().Add(waitTimeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runDetached runs a container from bundle with `run -d`, returning its
// id and its init's host pid.
func (e *env) runDetached(bundle string) (id string, pid int) {
	e.t.Helper()
	id = e.newID()
	e.mustBerth("run", "-d", "-b", bundle, id)
	st := e.state(id)
	if st.Status != "running" || st.Pid <= 0 {
		e.t.Fatalf("after run -d: expected status running with a pid, got %+v", st)
	}
	return id, st.Pid
}

// waitFileContains polls until the file contains substr and returns its content.
func waitFileContains(t *testing.T, path, substr string) string {
	t.Helper()
	var data []byte
	if !poll(func() bool {
		data, _ = os.ReadFile(path)
		return bytes.Contains(data, []byte(substr))
	}) {
		t.Fatalf("expected %s to contain %q within %v, it has %q", path, substr, waitTimeout, data)
	}
	return string(data)
}

// ---- leftovers -----------------------------------------------------------

// assertNoLeftovers checks that the container id has no state dir in root,
// no cgroup, no mount and no live process on the host.
func assertNoLeftovers(t *testing.T, root, id string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover: state dir %s still exists (lstat err=%v)", filepath.Join(root, id), err)
	}
	if dirs := cgroupDirsNamed(id); len(dirs) > 0 {
		t.Errorf("leftover: cgroup directories of %s: %v", id, dirs)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, id) {
				t.Errorf("leftover: mount of %s: %s", id, l)
			}
		}
	}
	// A container's init that was reparented can stay a zombie for a moment
	// until the host's init reaps it; zombies are not counted.
	if procs := processesInCgroupOf(id); len(procs) > 0 {
		t.Errorf("leftover: processes of %s still alive: %v", id, procs)
	}
}

// cgroupDirsNamed walks /sys/fs/cgroup (depth <= 4 below each hierarchy,
// deeper if this process's own cgroup is deeper) for directories named id.
func cgroupDirsNamed(id string) []string {
	maxDepth := 5 // /sys/fs/cgroup/<hierarchy>/a/b/c/<id>
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			parts := strings.SplitN(l, ":", 3)
			if len(parts) == 3 {
				if d := strings.Count(strings.Trim(parts[2], "/"), "/") + 3; d > maxDepth {
					maxDepth = d
				}
			}
		}
	}
	var found []string
	const top = "/sys/fs/cgroup"
	_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(top, p)
		if d.Name() == id {
			found = append(found, p)
		}
		if rel != "." && strings.Count(rel, "/")+1 >= maxDepth {
			return fs.SkipDir
		}
		return nil
	})
	return found
}

// processesInCgroupOf lists live (non-zombie) processes whose cgroup path
// mentions id.
func processesInCgroupOf(id string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil || !bytes.Contains(cg, []byte("/"+id)) {
			continue
		}
		if procState(pid) == "Z" || procState(pid) == "" {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		found = append(found, fmt.Sprintf("%d(%s)", pid, strings.TrimSpace(string(comm))))
	}
	return found
}

// procState is the state letter of /proc/pid/stat ("" if gone).
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return ""
	}
	return string(data[i+2])
}

// ---- cgroups ---------------------------------------------------------------

// cgroupV1File returns the path of a file of a cgroup v1 controller for the
// cgroup of the host process pid, skipping the test on hosts without v1.
func cgroupV1File(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, "cgroup.procs")); err != nil {
		t.Skipf("this host has no cgroup v1 %s hierarchy at /sys/fs/cgroup/%s: the tests read v1 files", controller, controller)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("reading the cgroup of pid %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, parts[2], file)
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup in %q", pid, controller, data)
	return ""
}

// readCgroup reads a cgroup v1 file of the cgroup of pid, trimmed.
func readCgroup(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	p := cgroupV1File(t, pid, controller, file)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	return strings.TrimSpace(string(data))
}

// ---- small assertions ---------------------------------------------------------

func wantCode(t *testing.T, r result, want int, what string) {
	t.Helper()
	if r.code != want {
		t.Errorf("%s: expected exit code %d, got %s", what, want, r)
	}
}

func wantFail(t *testing.T, r result, what string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s: expected a non-zero exit, got %s", what, r)
	}
}

func wantContains(t *testing.T, got, substr, what string) {
	t.Helper()
	if !strings.Contains(got, substr) {
		t.Errorf("%s: expected output containing %q, got %q", what, substr, got)
	}
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}
