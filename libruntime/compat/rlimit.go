package compat

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// DeferAddressSpaceLimit takes RLIMIT_AS out of the limits libcontainer
// applies to a process's init (a container's, or that of a process `exec`
// starts in one), and returns the limit to apply with
// ApplyAddressSpaceLimit once the init has exec'd the user's program (nil
// when limits has none).
//
// libcontainer sets a process's rlimits from the parent as soon as the init
// reports ready, long before the init is done: it still builds its seccomp
// filter, waits for `start`, and closes its descriptors. berth's init is a
// Go program whose runtime alone reserves about 1.2 GB of address space
// (1.56 GB in all: the page allocator's summaries, heap arena hints, and
// glibc's per-thread malloc arenas), so a RLIMIT_AS below that makes any
// later mmap of the init fail ("cannot allocate memory", or a Go runtime
// fatal error) although the user's program would fit well within it. Even
// applied while the init waits for `start`, the limit hits the few
// allocations it makes after that. The limit is meant for the program; so
// berth applies it right after the execve, which leaves the program a
// window of well under a millisecond, typically, before the limit holds.
// The init of an exec'd process has less left to do once libcontainer has
// set the limits (seccomp, credentials, closing descriptors), but its Go
// runtime may still need a new mapping then, e.g. a thread when a system
// call blocks on a loaded machine, so its limit is held back alike.
//
// Each RLIMIT_AS entry is replaced, not removed, by the limit the init
// already has (it inherits berth's own), so the entry is a no-op: a process
// with no rlimits of its own gets the container configuration's list
// instead, which would bring RLIMIT_AS back.
func DeferAddressSpaceLimit(limits []configs.Rlimit) (*configs.Rlimit, error) {
	late := AddressSpaceLimit(limits)
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

// AddressSpaceLimit returns the RLIMIT_AS of limits, nil if there is none;
// the last entry wins, as when libcontainer applies them in order.
func AddressSpaceLimit(limits []configs.Rlimit) *configs.Rlimit {
	var late *configs.Rlimit
	for _, rl := range limits {
		if rl.Type == unix.RLIMIT_AS {
			want := rl
			late = &want
		}
	}
	return late
}

// ApplyAddressSpaceLimit sets a held-back RLIMIT_AS on pid, an init that
// has just exec'd the user's program. A program that has already exited is
// no error: it needs no limit.
func ApplyAddressSpaceLimit(pid int, rl *configs.Rlimit) error {
	if rl == nil {
		return nil
	}
	err := unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil)
	if err != nil && err != unix.ESRCH {
		return fmt.Errorf("set RLIMIT_AS (soft %d, hard %d) of the container's process %d: %w", rl.Soft, rl.Hard, pid, err)
	}
	return nil
}
