// Package peakrss measures the peak resident set size of a command itself.
//
// The obvious way, the Maxrss of the rusage a parent gets from wait4, is
// wrong for a child of a Go program: os/exec starts children with
// clone(CLONE_VM|CLONE_VFORK), so until its execve the child runs in the
// parent's memory, and execve records that memory's high-water mark as the
// child's own (exec_mmap -> setmax_mm_hiwater_rss). A 10 MiB benchmark
// process makes every child it times look at least 10 MiB big.
//
// GNU time (Debian's package "time") forks with fork(2) from a process of
// about 1 MiB and reports its child's Maxrss, so the figure is the
// command's own peak, or about 1 MiB for a command smaller than that.
package peakrss

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Tool is GNU time.
const Tool = "/usr/bin/time"

// Wrap changes c to run under GNU time and returns a function that reads
// the peak RSS (KiB) after c has run successfully.
func Wrap(c *exec.Cmd) (read func() (int64, error), err error) {
	f, err := os.CreateTemp("", "peakrss-")
	if err != nil {
		return nil, err
	}
	f.Close()
	c.Args = append([]string{Tool, "-f", "%M", "-o", f.Name(), "--", c.Path}, c.Args[1:]...)
	c.Path = Tool
	return func() (int64, error) {
		defer os.Remove(f.Name())
		data, err := os.ReadFile(f.Name())
		if err != nil {
			return 0, err
		}
		// The last line is the figure; a failed command adds a line before it.
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: unexpected output %q", Tool, data)
		}
		return kib, nil
	}, nil
}
