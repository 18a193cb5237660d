package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

// asRuns is how many times in a row each program runs under each limit,
// for run and for exec: the fault this guards against (the limit set after
// the program had started) showed in 5 runs out of 6, and a limit set while
// berth's own Go init still works kills it now and then.
const asRuns = 20

// requireBuildTool finds a compiler the test needs; under CI=true a missing
// one is a failure, not a skip.
func requireBuildTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s is needed to build the test's programs (scripts/setup.sh installs it): %v", name, err)
	}
	return path
}

// buildProbes builds testdata/aslimit's programs, static, into a private
// rootfs: /asprobe (C) and /goprobe (Go). Each prints the RLIMIT_AS it
// had before its own code ran, maps and touches memory up to 64 MiB below
// it, and checks that a mapping past it is refused.
func buildProbes(t *testing.T, e *env) string {
	t.Helper()
	gcc := requireBuildTool(t, "gcc")
	goBin := requireBuildTool(t, "go")
	rootfs := e.privateRootfs()
	for _, c := range []*exec.Cmd{
		exec.Command(gcc, "-static", "-O2", "-Wall", "-o", filepath.Join(rootfs, "asprobe"), "./testdata/aslimit/asprobe.c"),
		exec.Command(goBin, "build", "-o", filepath.Join(rootfs, "goprobe"), "./testdata/aslimit/goprog"),
	} {
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", c.Args, err, out)
		}
	}
	return rootfs
}

// wantProbe checks a probe's output: its limit at start, and that it could
// use the space below the limit and none past it.
func wantProbe(t *testing.T, out string, limit uint64, what string) bool {
	t.Helper()
	first, rest, _ := strings.Cut(out, "\n")
	if want := fmt.Sprintf("RLIMIT_AS %d %d", limit, limit); first != want {
		t.Errorf("%s: expected the program to start with %q, got output %q", what, want, out)
		return false
	}
	if !strings.HasPrefix(rest, "touched ") || !strings.HasSuffix(rest, "past the limit: refused\ndone\n") {
		t.Errorf("%s: expected the program to touch memory up to near the limit and be refused past it, got output %q", what, out)
		return false
	}
	return true
}

func withASLimit(limit uint64) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Soft: limit, Hard: limit})
	}
}

// RLIMIT_AS binds the container's program from its first instruction, for
// run, create + start, exec and exec -d: a C and a Go program report the
// limit they saw before their own code ran, 20 times in a row each.
func TestAddressSpaceLimitFromFirstInstruction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rootfs := buildProbes(t, e)
	for _, c := range []struct {
		name  string
		prog  string
		limit uint64
	}{
		{"C 1 GiB", "/asprobe", 1 << 30},
		{"C 512 MiB", "/asprobe", 512 << 20},
		{"Go 1 GiB", "/goprobe", 1 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			onRootfs := func(s *specs.Spec) { s.Root = &specs.Root{Path: rootfs, Readonly: true} }
			bundle := e.bundle(onRootfs, withASLimit(c.limit), args(c.prog))
			for i := 1; i <= asRuns; i++ {
				r := e.berth("run", "-b", bundle, e.newID())
				wantCode(t, r, 0, fmt.Sprintf("run #%d", i))
				if !wantProbe(t, r.stdout, c.limit, fmt.Sprintf("run #%d", i)) {
					break
				}
			}
			for i := 1; i <= 5; i++ {
				id := e.newID()
				created := e.berth("create", "-b", bundle, id)
				wantCode(t, created, 0, "create")
				e.mustBerth("start", id)
				e.waitStatus(id, "stopped")
				// The program's stdout is create's; it has exited.
				data, err := os.ReadFile(created.outPath)
				if err != nil {
					t.Fatal(err)
				}
				if !wantProbe(t, string(data), c.limit, fmt.Sprintf("create + start #%d", i)) {
					break
				}
			}

			// exec takes the rlimits of the container's config.json.
			id, _ := e.runDetached(e.bundle(onRootfs, withASLimit(c.limit)))
			for i := 1; i <= asRuns; i++ {
				r := e.berth("exec", id, c.prog)
				wantCode(t, r, 0, fmt.Sprintf("exec #%d", i))
				if !wantProbe(t, r.stdout, c.limit, fmt.Sprintf("exec #%d", i)) {
					break
				}
			}
			pidFile := filepath.Join(e.mkdir("pid"), "exec.pid")
			for i := 1; i <= asRuns/2; i++ {
				what := fmt.Sprintf("exec -d #%d", i)
				r := e.berth("exec", "-d", "--pid-file", pidFile, id, c.prog)
				wantCode(t, r, 0, what)
				if r.code != 0 {
					break
				}
				pid := readPidFile(t, pidFile)
				// Its stdout is exec's; it is done when it has exited (a
				// zombie until the subreaper or host init it was
				// reparented to reaps it).
				if !poll(func() bool { return procState(pid) == "" || procState(pid) == "Z" }) {
					t.Fatalf("%s: the program (pid %d) still runs after %v", what, pid, waitTimeout)
				}
				data, err := os.ReadFile(r.outPath)
				if err != nil {
					t.Fatal(err)
				}
				if !wantProbe(t, string(data), c.limit, what) {
					break
				}
			}
			// A process.json without rlimits, as containerd's shim sends
			// it, gets the container's, RLIMIT_AS included, from its first
			// instruction too.
			proc := e.writeFile("process.json", `{"args": ["`+c.prog+`"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}`)
			for i := 1; i <= 5; i++ {
				what := fmt.Sprintf("exec -p #%d", i)
				r := e.berth("exec", "-p", proc, id)
				wantCode(t, r, 0, what)
				if !wantProbe(t, r.stdout, c.limit, what) {
					break
				}
			}
		})
	}

	// The Go runtime needs ~700 MB of address space to start: under 512
	// MiB it must fail at its start, loudly, and never run unlimited.
	t.Run("Go 512 MiB", func(t *testing.T) {
		e := e.with(t)
		onRootfs := func(s *specs.Spec) { s.Root = &specs.Root{Path: rootfs, Readonly: true} }
		check := func(r result, what string) {
			t.Helper()
			if r.code == 0 || strings.Contains(r.stdout, "RLIMIT_AS") || !strings.Contains(r.stderr, "fatal error") {
				t.Errorf("%s: expected the Go runtime to fail at its start (exit != 0, a fatal error, no report), got %s", what, r)
			}
		}
		check(e.berth("run", "-b", e.bundle(onRootfs, withASLimit(512<<20), args("/goprobe")), e.newID()), "run")
		id, _ := e.runDetached(e.bundle(onRootfs, withASLimit(512<<20)))
		check(e.berth("exec", id, "/goprobe"), "exec")
	})
}
