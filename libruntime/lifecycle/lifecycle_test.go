package lifecycle

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/process"
)

// fakeInit starts a shell that names itself as libcontainer's init does,
// and returns once the name is in place. The shell runs then when release
// is called. The process is killed and reaped when the test ends.
func fakeInit(t *testing.T, then string) (cmd *exec.Cmd, release func()) {
	t.Helper()
	cmd = exec.Command("sh", "-c", `printf '%s' '`+process.InitComm+`' > /proc/$$/comm && read _; `+then)
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
	comm := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(comm)
		if strings.TrimSpace(string(data)) == process.InitComm {
			return cmd, func() { stdin.Close() }
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake init never named itself %s (comm %q)", process.InitComm, data)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWaitExecutedSeesTheExec(t *testing.T) {
	for _, onExit := range []ExitBeforeExec{ExitEndsWait, ExitIsError} {
		cmd, release := fakeInit(t, "exec sleep 30")
		release()
		if err := WaitExecuted(cmd.Process.Pid, 5*time.Second, onExit); err != nil {
			t.Errorf("onExit=%v: expected nil once the process exec'd, got %v", onExit, err)
		}
	}
}

// A program that has exec'd and exited, not yet reaped, ran: its comm is
// the program's.
func TestWaitExecutedExecThenExit(t *testing.T) {
	cmd, release := fakeInit(t, "exec true")
	release()
	for deadline := time.Now().Add(5 * time.Second); procState(cmd.Process.Pid) != "Z"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fake init's program never exited")
		}
	}
	if err := WaitExecuted(cmd.Process.Pid, time.Second, ExitIsError); err != nil {
		t.Errorf("expected nil for a zombie that exec'd, got %v", err)
	}
}

func TestWaitExecutedExitBeforeExec(t *testing.T) {
	cmd, release := fakeInit(t, "exit 1")
	release()
	pid := cmd.Process.Pid
	err := WaitExecuted(pid, 5*time.Second, ExitIsError)
	if !errors.Is(err, ErrExitedBeforeExec) {
		t.Errorf("ExitIsError: expected ErrExitedBeforeExec, got %v", err)
	}
	// Gone altogether (reaped) is the same.
	_ = cmd.Wait()
	if err := WaitExecuted(pid, time.Second, ExitIsError); !errors.Is(err, ErrExitedBeforeExec) {
		t.Errorf("ExitIsError, reaped: expected ErrExitedBeforeExec, got %v", err)
	}
	if err := WaitExecuted(pid, time.Second, ExitEndsWait); err != nil {
		t.Errorf("ExitEndsWait: expected nil, got %v", err)
	}
}

func TestWaitExecutedLimit(t *testing.T) {
	cmd, _ := fakeInit(t, "exit 1") // never released
	for _, onExit := range []ExitBeforeExec{ExitEndsWait, ExitIsError} {
		start := time.Now()
		err := WaitExecuted(cmd.Process.Pid, 50*time.Millisecond, onExit)
		if !errors.Is(err, ErrStillInit) {
			t.Errorf("onExit=%v: expected ErrStillInit, got %v", onExit, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("onExit=%v: a 50ms limit took %v", onExit, took)
		}
	}
}

// procState is the state letter of /proc/pid/stat ("" if gone).
func procState(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return ""
	}
	return string(data[i+2])
}
