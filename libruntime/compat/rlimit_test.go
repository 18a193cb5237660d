package compat

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

func TestApplyAddressSpaceLimit(t *testing.T) {
	const mib256 = 256 << 20
	pid := sleeper(t).Process.Pid
	if err := ApplyAddressSpaceLimit(pid, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: mib256 / 2, Hard: mib256}); err != nil {
		t.Fatal(err)
	}
	var got unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Cur != mib256/2 || got.Max != mib256 {
		t.Errorf("expected RLIMIT_AS soft %d, hard %d on pid %d, got %+v", mib256/2, mib256, pid, got)
	}
	if err := ApplyAddressSpaceLimit(pid, nil); err != nil {
		t.Errorf("nil limit: expected nothing to do, got %v", err)
	}
}

func TestApplyAddressSpaceLimitErrors(t *testing.T) {
	pid := sleeper(t).Process.Pid
	// The kernel refuses a soft limit above the hard one; the error must
	// say which limit, for which process.
	err := ApplyAddressSpaceLimit(pid, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: 2 << 30, Hard: 1 << 30})
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
	if err := ApplyAddressSpaceLimit(gone, &configs.Rlimit{Type: unix.RLIMIT_AS, Soft: 1 << 30, Hard: 1 << 30}); err != nil {
		t.Errorf("no such process: expected no error, got %v", err)
	}
}
