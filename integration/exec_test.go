package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// statusField returns a field of /proc/self/status as printed by a process.
func statusField(t *testing.T, status, field string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("expected a %s line in /proc/self/status, got %q", field, status)
	return ""
}

func capBit(t *testing.T, hexmask string, bit uint) bool {
	t.Helper()
	v, err := strconv.ParseUint(hexmask, 16, 64)
	if err != nil {
		t.Fatalf("expected a hex capability mask, got %q", hexmask)
	}
	return v&(1<<bit) != 0
}

const capSysAdmin = 21

// TestExec runs the exec subtests in one shared running container.
func TestExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// noNewPrivileges false so that --no-new-privs makes a difference.
	id, initPid := e.runDetached(e.bundle(func(s *specs.Spec) { s.Process.NoNewPrivileges = false }))

	t.Run("exit code", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		wantCode(t, e.berth("exec", id, "sh", "-c", "exit 3"), 3, "exec of sh -c 'exit 3'")
		wantCode(t, e.berth("exec", id, "sh", "-c", "kill -9 $$"), 137, "exec of a process killed by SIGKILL")
		wantCode(t, e.berth("exec", id, "true"), 0, "exec of true")
	})
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		tok := token()
		r := e.berth("exec", "-e", "FOO="+tok, "-e", "BAR=bar", id, "sh", "-c", `echo "$FOO $BAR"`)
		wantCode(t, r, 0, "exec -e")
		if strings.TrimSpace(r.stdout) != tok+" bar" {
			t.Errorf("exec -e FOO=%s -e BAR=bar: expected %q, got %q", tok, tok+" bar", r.stdout)
		}
		r = e.berth("exec", "--env", "FOO="+tok, id, "sh", "-c", `echo "$FOO"`)
		if strings.TrimSpace(r.stdout) != tok {
			t.Errorf("exec --env FOO=%s: expected %q, got %s", tok, tok, r)
		}
	})
	t.Run("user", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		r := e.berth("exec", "-u", "65534:65534", id, "sh", "-c", "id -u; id -g")
		wantCode(t, r, 0, "exec -u 65534:65534")
		if r.stdout != "65534\n65534\n" {
			t.Errorf("exec -u 65534:65534: expected uid and gid 65534, got %q", r.stdout)
		}
		r = e.berth("exec", "--user", "65534", id, "id", "-u")
		if strings.TrimSpace(r.stdout) != "65534" {
			t.Errorf("exec --user 65534: expected uid 65534, got %s", r)
		}
		r = e.berth("exec", id, "sh", "-c", "id -u; id -g")
		if r.stdout != "0\n0\n" {
			t.Errorf("exec without -u: expected the config's uid and gid 0, got %s", r)
		}
	})
	t.Run("cwd", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		r := e.berth("exec", "--cwd", "/tmp", id, "pwd")
		wantCode(t, r, 0, "exec --cwd /tmp")
		if strings.TrimSpace(r.stdout) != "/tmp" {
			t.Errorf("exec --cwd /tmp pwd: expected /tmp, got %q", r.stdout)
		}
	})
	t.Run("detach and pid file", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		pidFile := filepath.Join(e.mkdir("pid"), "exec.pid")
		r := e.berth("exec", "-d", "--pid-file", pidFile, id, "sleep", "100")
		wantCode(t, r, 0, "exec -d --pid-file")
		pid := readPidFile(t, pidFile)
		if pid == initPid || pid <= 0 {
			t.Fatalf("exec -d --pid-file: expected the exec'd process's pid, not the init's %d, got %d", initPid, pid)
		}
		// exec -d waits for the execve only so long (as runc's does): on a
		// loaded host the process may still be berth's init a moment.
		var comm []byte
		var err error
		poll(func() bool {
			comm, err = os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			return err == nil && strings.TrimSpace(string(comm)) == "sleep"
		})
		if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
			t.Errorf("exec -d: expected pid %d to be the running sleep, got comm %q (err %v)", pid, comm, err)
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(cg), "/"+id) {
			t.Errorf("exec -d: expected pid %d in the container's cgroup, got %q", pid, cg)
		}
	})
	t.Run("process json", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		tok := token()
		p := e.writeFile("process.json", `{"args":["sh","-c","echo fromjson $FOO; pwd; id -u"],`+
			`"env":["PATH=/bin:/usr/bin","FOO=`+tok+`"],"cwd":"/etc","user":{"uid":65534,"gid":65534}}`)
		for _, flag := range []string{"-p", "--process"} {
			r := e.berth("exec", flag, p, id)
			wantCode(t, r, 0, "exec "+flag+" process.json")
			if want := "fromjson " + tok + "\n/etc\n65534\n"; r.stdout != want {
				t.Errorf("exec %s process.json: expected %q, got %q", flag, want, r.stdout)
			}
		}
	})
	t.Run("preserve fds", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		tok := token()
		r := e.berthOpts(runOpts{extra: []*os.File{e.extraFile(tok)}}, "exec", "--preserve-fds", "1", id, "cat", "/proc/self/fd/3")
		wantCode(t, r, 0, "exec --preserve-fds 1")
		wantContains(t, r.stdout, tok, "exec reading the preserved fd 3")
	})
	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		without := e.berth("exec", id, "cat", "/proc/self/status")
		wantCode(t, without, 0, "exec cat /proc/self/status")
		if capBit(t, statusField(t, without.stdout, "CapEff"), capSysAdmin) || capBit(t, statusField(t, without.stdout, "CapBnd"), capSysAdmin) {
			t.Errorf("exec without --cap: expected no CAP_SYS_ADMIN (the config does not grant it), got %q", without.stdout)
		}
		for _, flag := range []string{"-c", "--cap"} {
			with := e.berth("exec", flag, "CAP_SYS_ADMIN", id, "cat", "/proc/self/status")
			wantCode(t, with, 0, "exec "+flag+" CAP_SYS_ADMIN")
			if !capBit(t, statusField(t, with.stdout, "CapEff"), capSysAdmin) || !capBit(t, statusField(t, with.stdout, "CapBnd"), capSysAdmin) {
				t.Errorf("exec %s CAP_SYS_ADMIN: expected bit %d in CapEff and CapBnd, got CapEff %s CapBnd %s", flag, capSysAdmin,
					statusField(t, with.stdout, "CapEff"), statusField(t, with.stdout, "CapBnd"))
			}
		}
	})
	t.Run("no new privs", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		r := e.berth("exec", id, "cat", "/proc/self/status")
		if v := statusField(t, r.stdout, "NoNewPrivs"); v != "0" {
			t.Errorf("exec without --no-new-privs (config noNewPrivileges false): expected NoNewPrivs 0, got %s", v)
		}
		r = e.berth("exec", "--no-new-privs", id, "cat", "/proc/self/status")
		wantCode(t, r, 0, "exec --no-new-privs")
		if v := statusField(t, r.stdout, "NoNewPrivs"); v != "1" {
			t.Errorf("exec --no-new-privs: expected NoNewPrivs 1, got %s", v)
		}
	})
	t.Run("tty", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		sock, recv := e.consoleSocket()
		r := e.berth("exec", "-t", "-d", "--console-socket", sock, id, "sh")
		wantCode(t, r, 0, "exec -t -d --console-socket")
		if r.code != 0 {
			return
		}
		master := recv()
		out := readPty(master)
		tok := token()
		_, _ = master.Write([]byte("tty; " + echoCommand(tok)))
		out.waitFor(t, "hi-"+tok, nil)
		out.waitFor(t, "/dev/pts/", nil)
		_, _ = master.Write([]byte("exit\n"))
	})
}

// TestExecInStoppedContainerFails: exec needs a running container.
func TestExecInStoppedContainerFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	e.mustBerth("run", "--keep", "-b", e.bundle(args("true")), id)
	wantFail(t, e.berth("exec", id, "true"), "exec in a stopped container")
}
