package aslimit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/process"
)

// fakeInit starts a shell that names itself as libcontainer's init does
// and, once release is called, runs pause (e.g. stops itself) and execs
// then. The process is killed and reaped when the test ends.
func fakeInit(t *testing.T, pause, then string) (cmd *exec.Cmd, release func()) {
	t.Helper()
	cmd = exec.Command("sh", "-c", `printf '%s' '`+process.InitComm+`' > /proc/$$/comm && read _; `+pause+`; exec `+then)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		comm, _, _, err := process.Stat(cmd.Process.Pid)
		if err == nil && comm == process.InitComm {
			return cmd, func() { stdin.Close() }
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake init never named itself %s (comm %q, %v)", process.InitComm, comm, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func limitOf(soft, hard uint64) *configs.Rlimit {
	return &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: soft, Hard: hard}
}

func TestPauseWatch(t *testing.T) {
	out := filepath.Join(t.TempDir(), "limit")
	// The program reports the limit it has when it starts.
	cmd, release := fakeInit(t, "kill -STOP $$", "sh -c 'ulimit -v > "+out+"'")
	w := WatchPause(limitOf(512<<20, 512<<20))
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the program after the pause: %v", err)
	}
	if err := w.Finish(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "524288" {
		t.Errorf("expected the program to start with RLIMIT_AS 524288 KiB, got %q", got)
	}
}

// An init that execs without pausing runs its program without the limit:
// that must be an error, for the caller to kill it.
func TestPauseWatchNoPause(t *testing.T) {
	cmd, release := fakeInit(t, "true", "sleep 30")
	w := WatchPause(limitOf(1<<30, 1<<30))
	release()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if comm, _, _, _ := process.Stat(cmd.Process.Pid); comm == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake init never exec'd sleep")
		}
	}
	err := w.Finish(cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), "without pausing") || !strings.Contains(err.Error(), "RLIMIT_AS") {
		t.Errorf("expected an error saying the process exec'd without pausing, RLIMIT_AS not set; got %v", err)
	}
}

// An init that dies before its pause runs no program: libcontainer then
// reports no process started (Finish(0)), and that is no error of the
// watch's. Had libcontainer reported it started, the init would have got
// past its pause without stopping: an error, RLIMIT_AS not set.
func TestPauseWatchGone(t *testing.T) {
	for _, started := range []bool{false, true} {
		cmd, release := fakeInit(t, "exit 3", "true")
		w := WatchPause(limitOf(1<<30, 1<<30))
		release()
		_ = cmd.Wait()
		pid := 0
		if started {
			pid = cmd.Process.Pid
		}
		err := w.Finish(pid)
		switch {
		case !started && err != nil:
			t.Errorf("expected no error for an init gone before its pause and not reported started, got %v", err)
		case started && (err == nil || !strings.Contains(err.Error(), "RLIMIT_AS not set")):
			t.Errorf("expected an error for a process reported started that never paused, got %v", err)
		}
	}
}

// A limit the kernel refuses is an error naming RLIMIT_AS, and the paused
// init is killed: its program never runs, and libcontainer, which waits
// for the init to go on, is not left waiting.
func TestPauseWatchRefused(t *testing.T) {
	cmd, release := fakeInit(t, "kill -STOP $$", "true")
	w := WatchPause(limitOf(2<<30, 1<<30))
	release()
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("expected the init killed, got %v", cmd.ProcessState)
	}
	if err := w.Finish(cmd.Process.Pid); err == nil || !strings.Contains(err.Error(), "RLIMIT_AS") {
		t.Errorf("soft above hard: expected an error naming RLIMIT_AS, got %v", err)
	}
}
