package compat

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// DeferAddressSpaceLimit takes RLIMIT_AS out of the limits libcontainer
// applies to a container's init, and returns the limit to apply with
// ApplyAddressSpaceLimit once the init is done setting up (nil when limits
// has none).
//
// libcontainer sets a process's rlimits from the parent as soon as the init
// reports ready, before the init has built its seccomp filter and finished
// its setup. berth's init is a Go program whose runtime alone reserves
// about 1.2 GB of address space (1.56 GB in all), so a RLIMIT_AS below that
// makes every later mmap of the init fail ("error adding seccomp filter rule
// ...: cannot allocate memory") although the user's program would fit well
// within it. The limit is meant for that program: the init only has to be
// under it from its execve on.
//
// Each RLIMIT_AS entry is replaced, not removed, by the limit the init
// already has (it inherits berth's own), so the entry is a no-op: a process
// with no rlimits of its own gets the container configuration's list
// instead, which would bring RLIMIT_AS back.
func DeferAddressSpaceLimit(limits []configs.Rlimit) (*configs.Rlimit, error) {
	var late *configs.Rlimit
	for i, rl := range limits {
		if rl.Type != unix.RLIMIT_AS {
			continue
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_AS, &cur); err != nil {
			return nil, fmt.Errorf("read berth's own RLIMIT_AS: %w", err)
		}
		want := rl // the last entry wins, as when libcontainer applies them in order
		late = &want
		limits[i] = configs.Rlimit{Type: unix.RLIMIT_AS, Soft: cur.Cur, Hard: cur.Max}
	}
	return late, nil
}

// ApplyAddressSpaceLimit sets the RLIMIT_AS that DeferAddressSpaceLimit held
// back on the container's init pid. Call it after libcontainer's Start has
// returned, when the init has finished its setup and waits for `start`
// (the exec fifo) before it execs the user's program, so the program runs
// under the limit from its first instruction.
func ApplyAddressSpaceLimit(pid int, rl *configs.Rlimit) error {
	if rl == nil {
		return nil
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil); err != nil {
		return fmt.Errorf("set RLIMIT_AS (soft %d, hard %d) of the container's init %d: %w", rl.Soft, rl.Hard, pid, err)
	}
	return nil
}
