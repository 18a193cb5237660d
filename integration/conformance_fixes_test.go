package integration

// Tests for the places where the OCI runtime-tools suite found berth
// (through libcontainer v1.5.2) refusing or mishandling configurations that
// the runtime spec allows: see conformance/README.md.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// denyStatx is a seccomp profile that allows everything but statx, which
// fails with errno: EPERM as an explicit deny does, or ENOSYS as runc's
// stub does for syscalls newer than a profile knows.
func denyStatx(errno syscall.Errno) *specs.LinuxSeccomp {
	ret := uint(errno)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"statx"}, Action: specs.ActErrno, ErrnoRet: &ret},
		},
	}
}

// A seccomp profile without statx must not break the init, which checks
// procfs handles with statx(STATX_MNT_ID) after loading the filter; and
// the profile must still be the user's, not one widened to allow statx.
func TestSeccompProfileWithoutStatx(t *testing.T) {
	t.Parallel()
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.ENOSYS} {
		// noNewPrivileges decides whether libcontainer loads the filter
		// just before exec or before it changes user and capabilities.
		for _, nnp := range []bool{true, false} {
			name := fmt.Sprintf("%s/noNewPrivileges=%v", errnoName(errno), nnp)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				tok := token()
				bundle := e.bundle(shell("grep ^Seccomp: /proc/self/status; echo "+tok), func(s *specs.Spec) {
					s.Linux.Seccomp = denyStatx(errno)
					s.Process.NoNewPrivileges = nnp
				})
				r := e.berth("run", "-b", bundle, e.newID())
				wantCode(t, r, 0, "run with a profile that denies statx")
				wantContains(t, r.stdout, tok, "the container's output")
				// 2 is SECCOMP_MODE_FILTER: the profile is in force.
				wantContains(t, r.stdout, "Seccomp:\t2", "the container's seccomp mode")
			})
		}
	}
}

func errnoName(errno syscall.Errno) string {
	if errno == syscall.ENOSYS {
		return "ENOSYS"
	}
	return "EPERM"
}

// A FIFO in linux.devices may carry a major:minor (the spec requires them
// "unless type is p"); the kernel ignores them for a FIFO.
func TestFifoDeviceWithMajorMinor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := token()
	bundle := e.bundle(shell("test -p /dev/bt-fifo && echo "+tok), func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/bt-fifo", Type: "p", Major: 8, Minor: 666})
	})
	r := e.berth("run", "-b", bundle, e.newID())
	wantCode(t, r, 0, "run with a FIFO device that has major:minor 8:666")
	wantContains(t, r.stdout, tok, "the container's output (a FIFO at /dev/bt-fifo)")
}

// Filesystem options on a bind mount are dropped with a warning naming the
// mount, as the kernel would ignore them, instead of failing the create.
func TestBindMountFilesystemOptionsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := token()
	src := filepath.Dir(e.writeFile("data", tok))
	bundle := e.bundle(shell("cat /mnt/bt-data/data"), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/mnt/bt-data", Type: "bind", Source: src,
			Options: []string{"rbind", "nosuid", "mode=755", "size=1k"},
		})
	})
	r := e.berth("run", "-b", bundle, e.newID())
	wantCode(t, r, 0, "run with mode= and size= on a bind mount")
	wantContains(t, r.stdout, tok, "the bind-mounted file")
	wantContains(t, r.stderr, "mount /mnt/bt-data: ignoring options", "the warning")
	wantContains(t, r.stderr, "mode=755,size=1k", "the warning")
}

// RLIMIT_AS well below the address space of berth's own init (a Go
// program, ~1.5 GB) must still be the user's program's limit. A seccomp
// filter is part of the config because building it was the step that ran
// out of address space.
func TestAddressSpaceLimitBelowInitSize(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	e := newEnv(t)
	bundle := e.bundle(shell("ulimit -v; grep 'Max address space' /proc/self/limits"), func(s *specs.Spec) {
		s.Linux.Seccomp = denyStatx(syscall.EPERM)
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Soft: gib, Hard: gib})
	})
	check := func(what string, r result) {
		t.Helper()
		wantCode(t, r, 0, what)
		// ulimit -v is in KiB; /proc/PID/limits in bytes (soft, hard).
		wantContains(t, r.stdout, "1048576\n", what+": ulimit -v")
		if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "Max address space 1073741824 1073741824 bytes") {
			t.Errorf("%s: expected soft and hard RLIMIT_AS of 1073741824 in /proc/self/limits, got %q", what, r.stdout)
		}
	}
	check("run with RLIMIT_AS of 1 GiB", e.berth("run", "-b", bundle, e.newID()))

	// create then start: `start` sets the limit on the init waiting on the
	// exec fifo, past its own allocations.
	id := e.newID()
	created := e.berth("create", "-b", bundle, id)
	wantCode(t, created, 0, "create with RLIMIT_AS of 1 GiB")
	e.mustBerth("start", id)
	e.waitStatus(id, "stopped")
	// The program's stdout is create's.
	waitFileContains(t, created.outPath, "bytes")
	data, err := os.ReadFile(created.outPath)
	if err != nil {
		t.Fatal(err)
	}
	check("create + start with RLIMIT_AS of 1 GiB", result{code: 0, stdout: string(data)})
}

// prestart hooks see status "created" (they are the spec 1.0 hooks "called
// after the start operation is called"), still run during create, and keep
// their own arguments and environment through berth's shim.
func TestPrestartHookSeesCreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.mkdir("hookout")
	stateFile := filepath.Join(out, "prestart.json")
	argsFile := filepath.Join(out, "args")
	bundle := e.bundle(func(s *specs.Spec) {
		addHook(s, "prestart", specs.Hook{
			Path: "/bin/sh",
			Args: []string{"bt-hook", "-c",
				`cat > "$1"; printf '%s %s %s\n' "$(head -c 7 /proc/$$/cmdline)" "$0" "$BT_HOOK_VAR" > "$2"`,
				"bt-arg0", stateFile, argsFile},
			Env: []string{"BT_HOOK_VAR=bt-value", "PATH=/usr/bin:/bin"},
		})
	})
	id := e.newID()
	e.mustBerth("create", "-b", bundle, id)
	st := readHookState(t, stateFile)
	if st.Status != specs.StateCreated || st.ID != id || st.Bundle != bundle || st.Pid <= 0 {
		t.Errorf("prestart hook: expected status created, id %s, bundle %s and a pid, got %+v", id, bundle, st)
	}
	if got, _ := os.ReadFile(argsFile); string(got) != "bt-hook bt-arg0 bt-value\n" {
		t.Errorf("prestart hook: expected argv[0] bt-hook, $0 bt-arg0 and BT_HOOK_VAR=bt-value, got %q", got)
	}
	if got := e.status(id); got != "created" {
		t.Errorf("after create: expected status created, got %s", got)
	}
}

// Every poststop hook runs even when an earlier one fails; the failure is a
// warning.
func TestPoststopHooksAllRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	after, marker := e.markerHook()
	id, _ := e.runDetached(e.bundle(func(s *specs.Spec) {
		addHook(s, "poststop", shHook("exit 3"))
		addHook(s, "poststop", after)
	}))
	e.mustBerth("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	r := e.berth("delete", id)
	wantCode(t, r, 0, "delete with a failing first poststop hook")
	wantContains(t, r.stderr, "poststop hook #0", "the warning")
	if !exists(marker) {
		t.Errorf("after delete: expected the second poststop hook to have run (no %s)", marker)
	}
	assertNoLeftovers(t, e.root, id)
}

// Every poststart hook runs even when an earlier one fails; then, as
// runtime-spec 1.3 requires, start fails, the container is stopped and
// destroyed, and the poststop hooks run.
func TestPoststartHooksAllRunThenStartFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	after, afterMarker := e.markerHook()
	poststop, poststopMarker := e.markerHook()
	bundle := e.bundle(func(s *specs.Spec) {
		addHook(s, "poststart", shHook("exit 3"))
		addHook(s, "poststart", after)
		addHook(s, "poststop", poststop)
	})
	id := e.newID()
	e.mustBerth("create", "-b", bundle, id)
	r := e.berth("start", id)
	wantFail(t, r, "start with a failing first poststart hook")
	wantContains(t, r.stderr, "poststart hook #0", "the error")
	if !exists(afterMarker) {
		t.Errorf("after start: expected the second poststart hook to have run (no %s)", afterMarker)
	}
	if !exists(poststopMarker) {
		t.Errorf("after start: expected the poststop hook to have run (no %s)", poststopMarker)
	}
	wantFail(t, e.berth("state", id), "state after a failed poststart hook")
	assertNoLeftovers(t, e.root, id)
}

// Poststart hooks run once the user's program has been exec'd: the hook
// reads the comm of the pid in its state, which must no longer be
// libcontainer's init.
func TestPoststartHookAfterExec(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"create+start", "run -d"} {
		t.Run(strings.ReplaceAll(how, " ", ""), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			comm := filepath.Join(e.mkdir("hookout"), "comm")
			bundle := e.bundle(func(s *specs.Spec) {
				addHook(s, "poststart", shHook(`pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/'); cat /proc/$pid/comm > `+comm))
			})
			id := e.newID()
			if how == "run -d" {
				e.mustBerth("run", "-d", "-b", bundle, id)
			} else {
				e.mustBerth("create", "-b", bundle, id)
				e.mustBerth("start", id)
			}
			got, err := os.ReadFile(comm)
			if err != nil {
				t.Fatalf("expected the poststart hook to have run before %s returned: %v", how, err)
			}
			if strings.TrimSpace(string(got)) != "sleep" {
				t.Errorf("poststart hook: expected the container's process to be the user's program (comm sleep), got comm %q", got)
			}
		})
	}
}

// A capability name no kernel knows is an error at create that names the
// field, not a warning.
func TestUnknownCapabilityRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var field string
	bundle := e.bundle(func(s *specs.Spec) {
		if s.Process.Capabilities == nil {
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		caps := s.Process.Capabilities
		field = fmt.Sprintf("process.capabilities.bounding[%d]", len(caps.Bounding))
		caps.Bounding = append(caps.Bounding, "CAP_TEST")
	})
	id := e.newID()
	r := e.berth("create", "-b", bundle, id)
	wantFail(t, r, "create with capability CAP_TEST")
	wantContains(t, r.stderr, field+": unknown capability", "the error")
	wantContains(t, r.stderr, "CAP_TEST", "the error")
	wantFail(t, e.berth("state", id), "state after the failed create")
	assertNoLeftovers(t, e.root, id)
}
