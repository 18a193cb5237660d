package aslimit

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// sleeper starts a child to set limits on; the test kills and reaps it.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestApply(t *testing.T) {
	const mib256 = 256 << 20
	pid := sleeper(t).Process.Pid
	if err := Apply(pid, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: mib256 / 2, Hard: mib256}); err != nil {
		t.Fatal(err)
	}
	var got unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Cur != mib256/2 || got.Max != mib256 {
		t.Errorf("expected RLIMIT_AS soft %d, hard %d on pid %d, got %+v", mib256/2, mib256, pid, got)
	}
	if err := Apply(pid, nil); err != nil {
		t.Errorf("nil limit: expected nothing to do, got %v", err)
	}
}

func TestApplyErrors(t *testing.T) {
	pid := sleeper(t).Process.Pid
	// The kernel refuses a soft limit above the hard one; the error must
	// say which limit, for which process.
	err := Apply(pid, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: 2 << 30, Hard: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "RLIMIT_AS") {
		t.Errorf("soft above hard: expected an error naming RLIMIT_AS, got %v", err)
	}
	// A program gone already needs no limit. pid_max is never a pid, where
	// a reaped child's pid might name another process by now.
	data, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(gone, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: 1 << 30, Hard: 1 << 30}); err != nil {
		t.Errorf("no such process: expected no error, got %v", err)
	}
}

func TestDefer(t *testing.T) {
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &own); err != nil {
		t.Fatal(err)
	}
	limits := []configs.Rlimit{
		{Type: unix.RLIMIT_AS, Soft: 1 << 31, Hard: 1 << 31},
		{Type: unix.RLIMIT_NOFILE, Soft: 3000, Hard: 4000},
		{Type: unix.RLIMIT_AS, Soft: 1 << 30, Hard: 1 << 30},
	}
	late, err := Defer(limits)
	if err != nil {
		t.Fatal(err)
	}
	if late == nil || late.Soft != 1<<30 || late.Hard != 1<<30 {
		t.Errorf("expected the last RLIMIT_AS (1 GiB) held back, got %+v", late)
	}
	for _, i := range []int{0, 2} {
		if limits[i].Soft != own.Cur || limits[i].Hard != own.Max {
			t.Errorf("limits[%d]: expected berth's own RLIMIT_AS %+v as a no-op, got %+v", i, own, limits[i])
		}
	}
	if limits[1].Soft != 3000 {
		t.Errorf("RLIMIT_NOFILE: expected it untouched, got %+v", limits[1])
	}
	if late, _ := Defer([]configs.Rlimit{{Type: unix.RLIMIT_CORE}}); late != nil {
		t.Errorf("without RLIMIT_AS: expected nothing held back, got %+v", late)
	}
}
