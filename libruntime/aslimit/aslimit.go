// Package aslimit gives a container's processes their RLIMIT_AS at the
// last moment before they exec the user's program, instead of when
// libcontainer would.
//
// libcontainer (like runc) sets a process's rlimits from the parent, with
// prlimit(2), as soon as its init reports ready. The init is berth's own
// binary, a Go program that still has work to do then (the seccomp filter,
// credentials, looking up the program, closing descriptors), and whose
// address space is already ~1.5 GB: the Go runtime reserves ~1.1 GB at
// start (page summaries, scavenger index, heap arena) and glibc 64 MB per
// thread arena. Under a RLIMIT_AS below that, every new mapping fails, so
// the Go runtime dies ("fatal error: runtime: cannot allocate memory") or
// the seccomp filter cannot be built. A Go program cannot even start under
// 512 MiB. So berth holds RLIMIT_AS back from libcontainer (Defer) and sets
// it itself (Apply) while the init is stopped at a point past all of that
// work, where only closing descriptors and the execve remain: the limit
// then holds from the program's first instruction.
//   - A container's init: blocked opening the exec fifo, before `start`
//     (or `run`) opens the other end.
//   - An exec'd process (libcontainer's setns init): it has no such point,
//     so berth's init makes one. PauseBeforeExec stops the init right after
//     libcontainer's last step that allocates, and ApplyAtPause sets the
//     limit there and lets it go on.
package aslimit

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// Defer takes RLIMIT_AS out of the limits libcontainer applies to a
// process's init and returns the limit to Apply once the init is past its
// own work (nil when limits has none).
//
// Each RLIMIT_AS entry is replaced, not removed, by the limit the init
// already has (it inherits berth's own), so the entry is a no-op: a process
// with no rlimits of its own gets the container configuration's list
// instead, which would bring RLIMIT_AS back.
func Defer(limits []configs.Rlimit) (*configs.Rlimit, error) {
	late := Find(limits)
	if late == nil {
		return nil, nil
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &cur); err != nil {
		return nil, fmt.Errorf("read berth's own RLIMIT_AS: %w", err)
	}
	for i, rl := range limits {
		if rl.Type == unix.RLIMIT_AS {
			limits[i] = configs.Rlimit{Type: unix.RLIMIT_AS, Soft: cur.Cur, Hard: cur.Max}
		}
	}
	return late, nil
}

// Find returns the RLIMIT_AS of limits, nil if there is none; the last
// entry wins, as when libcontainer applies them in order.
func Find(limits []configs.Rlimit) *configs.Rlimit {
	var late *configs.Rlimit
	for _, rl := range limits {
		if rl.Type == unix.RLIMIT_AS {
			want := rl
			late = &want
		}
	}
	return late
}

// Apply sets a held-back RLIMIT_AS on pid, an init that has not exec'd the
// user's program yet. An init that is gone already is no error: its
// program never runs, and whoever waits for it reports that.
func Apply(pid int, rl *configs.Rlimit) error {
	if rl == nil {
		return nil
	}
	err := unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil)
	if err != nil && err != unix.ESRCH {
		return fmt.Errorf("set RLIMIT_AS (soft %d, hard %d) of the container's process %d: %w", rl.Soft, rl.Hard, pid, err)
	}
	return nil
}

// WaitForExecFifo waits (up to timeout) until the container's init pid is
// blocked opening the exec fifo, its last stop before the execve: `run`
// calls Apply as soon as libcontainer's Start returns, which is when the
// init closes its log pipe, a few allocating steps before it reaches the
// fifo. It looks for a thread of pid sleeping in the kernel's fifo open
// (wait_for_partner). Without kernel symbols in /proc/PID/wchan it cannot
// tell, and returns at once; a pid that is gone is no error either (Apply
// says so, or whoever waits for the init).
func WaitForExecFifo(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		blocked, known := inFifoOpen(pid)
		if blocked || !known || time.Now().After(deadline) {
			return
		}
		time.Sleep(delay)
	}
}

// inFifoOpen reports whether a thread of pid sleeps in a fifo open; known is
// false when that cannot be seen (the process is gone, or /proc/PID/wchan
// shows no symbol names).
func inFifoOpen(pid int) (blocked, known bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, false
	}
	for _, t := range tasks {
		wchan, err := os.ReadFile(dir + "/" + t.Name() + "/wchan")
		if err != nil {
			continue
		}
		switch string(wchan) {
		case "wait_for_partner", "fifo_open":
			return true, true
		case "0", "":
			// No kallsyms: symbol names are hidden.
		default:
			known = true
		}
	}
	return false, known
}
