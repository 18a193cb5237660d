package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// execASLimit is far below the ~1.56 GB of address space that berth's own
// init (a Go program) reserves before it execs the program: applied by
// libcontainer, it would make the init's own allocations fail.
const execASLimit = 256 << 20

// asReport prints a token (the exec ran), then the process's RLIMIT_AS as
// the shell sees it at its start (ulimit -v, in KiB) and as the kernel
// reports it.
func asReport(tok string) []string {
	return []string{"sh", "-c", "echo " + tok + "; ulimit -v; grep 'Max address space' /proc/self/limits"}
}

// wantASLimit checks asReport's output for a soft and hard RLIMIT_AS of
// execASLimit.
func wantASLimit(t *testing.T, r result, tok, what string) {
	t.Helper()
	wantCode(t, r, 0, what)
	wantContains(t, r.stdout, tok+"\n", what+": the exec'd program's output")
	wantContains(t, r.stdout, fmt.Sprintf("\n%d\n", execASLimit>>10), what+": ulimit -v")
	want := fmt.Sprintf("Max address space %d %d bytes", execASLimit, execASLimit)
	if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), want) {
		t.Errorf("%s: expected %q in /proc/self/limits, got %q", what, want, r.stdout)
	}
}

// withSeccomp gives the container a seccomp profile, which the init of an
// exec'd process builds after libcontainer has set the process's rlimits:
// the step that runs out of address space under a low RLIMIT_AS.
func withSeccomp(s *specs.Spec) { s.Linux.Seccomp = denyStatx(syscall.EPERM) }

// processJSON writes a process.json running args, with rlimits.
func (e *env) processJSON(args []string, rlimits []specs.POSIXRlimit) string {
	e.t.Helper()
	p := specs.Process{
		Args:    args,
		Env:     []string{"PATH=/bin:/usr/bin"},
		Cwd:     "/",
		Rlimits: rlimits,
	}
	data, err := json.Marshal(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.writeFile("process.json", string(data))
}

// `berth exec` of a process with a RLIMIT_AS below the init's own size:
// berth holds the limit back from libcontainer and sets it as the init
// pauses before its execve (aslimit.PauseWatch).
func TestExecAddressSpaceLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	asLimit := []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: execASLimit, Hard: execASLimit}}

	t.Run("process json", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, _ := e.runDetached(e.bundle(withSeccomp))
		tok := token()
		r := e.berth("exec", "-p", e.processJSON(asReport(tok), asLimit), id)
		wantASLimit(t, r, tok, "exec -p process.json with RLIMIT_AS of 256 MiB")
	})

	// A command-line exec takes the rlimits of the container's config.json.
	t.Run("container config", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, _ := e.runDetached(e.bundle(withSeccomp, func(s *specs.Spec) { s.Process.Rlimits = append(s.Process.Rlimits, asLimit...) }))
		tok := token()
		wantASLimit(t, e.berth(append([]string{"exec", id}, asReport(tok)...)...), tok,
			"exec of a command in a container with RLIMIT_AS of 256 MiB")
	})

	// A limit the kernel refuses (soft above hard, which libcontainer would
	// have refused too) fails the exec cleanly: an error naming RLIMIT_AS,
	// and no process left running without its limit.
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, _ := e.runDetached(e.bundle(withSeccomp))
		bad := []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: 2 * execASLimit, Hard: execASLimit}}
		for _, detach := range []bool{false, true} {
			a := []string{"exec", "-p", e.processJSON([]string{"sleep", "100"}, bad), id}
			if detach {
				a = append([]string{"exec", "-d"}, a[1:]...)
			}
			what := fmt.Sprintf("%q with RLIMIT_AS soft above hard", a[:len(a)-2])
			r := e.berth(a...)
			wantCode(t, r, 255, what)
			wantContains(t, r.stderr, "RLIMIT_AS", what+": the error")
			if procs := processesInCgroupOf(id); len(procs) != 1 {
				t.Errorf("%s: expected only the container's init left, got %v", what, procs)
			}
		}
	})

	// exec -d returns once the limit is set: the host sees it on the pid at
	// once, and the process is the program, not berth's init.
	t.Run("detached", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, _ := e.runDetached(e.bundle(withSeccomp))
		pidFile := filepath.Join(e.mkdir("pid"), "exec.pid")
		r := e.berth("exec", "-d", "--pid-file", pidFile, "-p", e.processJSON([]string{"sleep", "100"}, asLimit), id)
		wantCode(t, r, 0, "exec -d with RLIMIT_AS of 256 MiB")
		if r.code != 0 {
			return
		}
		pid := readPidFile(t, pidFile)
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
			t.Errorf("exec -d: expected pid %d to be the running sleep, got comm %q (err %v)", pid, comm, err)
		}
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("Max address space %d %d bytes", execASLimit, execASLimit)
		if !strings.Contains(strings.Join(strings.Fields(string(limits)), " "), want) {
			t.Errorf("exec -d: expected %q in /proc/%d/limits, got %q", want, pid, limits)
		}
	})
}
