package process

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

func TestWatchSeesExitAndTimeout(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	w := Watch(pid)
	defer w.Close()
	if err := w.Wait(20 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait on a sleeping process = %v, want ErrTimeout", err)
	}
	if !Alive(pid) {
		t.Fatalf("Alive(%d) = false for a running process", pid)
	}
	_ = cmd.Process.Kill()
	// The pidfd fires when the process dies, before it is reaped: it is a
	// zombie now and Alive must say it has exited.
	if err := w.Wait(5 * time.Second); err != nil {
		t.Fatalf("Wait after kill = %v, want nil", err)
	}
	if Alive(pid) {
		t.Fatalf("Alive(%d) = true for a killed (zombie) process", pid)
	}
}

func TestWaitExitOfMissingProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := WaitExit(cmd.Process.Pid, time.Second); err != nil {
		t.Fatalf("WaitExit of a reaped pid = %v, want nil", err)
	}
}
