// Package process watches processes that are not berth's children: a
// container's init outlives the `berth create` that started it, so later
// commands (`delete -f`, `start`) can only watch it, not wait(2) for it.
package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned when the process outlives the deadline.
var ErrTimeout = errors.New("process still running")

// Watcher notices the exit of one process. It holds a pidfd, which
// becomes readable the moment the process dies, so a killed container is
// noticed at once instead of on the next tick of a fixed sleep; and which
// keeps naming that process even if its pid is reused. Kernels without
// pidfd_open (< 5.3) get a short poll of /proc instead.
type Watcher struct {
	pid  int
	fd   int // -1 without pidfd
	gone bool
}

// Watch starts watching pid. Open it before signalling the process, so
// that the pid cannot be recycled in between.
func Watch(pid int) *Watcher {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		return &Watcher{pid: pid, fd: fd}
	case errors.Is(err, unix.ESRCH):
		return &Watcher{pid: pid, fd: -1, gone: true}
	default:
		return &Watcher{pid: pid, fd: -1}
	}
}

// Wait returns once the process has exited, or ErrTimeout after timeout
// (timeout < 0 waits forever).
func (w *Watcher) Wait(timeout time.Duration) error {
	if w.gone {
		return nil
	}
	if w.fd < 0 {
		return pollProc(w.pid, timeout)
	}
	deadline := time.Now().Add(timeout)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		ms := -1
		if timeout >= 0 {
			ms = max(0, int(time.Until(deadline).Milliseconds()))
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for %d: %w", w.pid, err)
		}
		if n == 0 {
			return ErrTimeout
		}
		w.gone = true
		return nil
	}
}

// Close releases the pidfd.
func (w *Watcher) Close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

// WaitExit watches pid until it exits or timeout passes.
func WaitExit(pid int, timeout time.Duration) error {
	w := Watch(pid)
	defer w.Close()
	return w.Wait(timeout)
}

func pollProc(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if !Alive(pid) {
			return nil
		}
		if timeout >= 0 && time.Now().After(deadline) {
			return ErrTimeout
		}
		time.Sleep(delay)
	}
}

// Alive reports whether pid names a process that has not exited. A zombie
// has exited: it only waits for its parent to collect its status.
func Alive(pid int) bool {
	_, ok := StartTime(pid)
	return ok
}

// InitComm is the command name libcontainer's nsexec gives a container's
// init (and an exec'd process's) until it execs the user's program.
const InitComm = "runc:[2:INIT]"

// Stat reads /proc/PID/stat, "PID (COMM) STATE FIELD4 ...": the command
// name, the state and the fields from the fourth on (fields[0] is field 4).
// COMM may itself hold spaces and ')': the fields follow the last ')'.
func Stat(pid int) (comm string, state byte, fields []string, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, nil, err
	}
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open || closing+2 >= len(data) {
		return "", 0, nil, fmt.Errorf("/proc/%d/stat: unexpected format %q", pid, data)
	}
	f := strings.Fields(string(data[closing+2:]))
	return string(data[open+1 : closing]), data[closing+2], f[1:], nil
}

// StartTime is field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot: with the pid, it names one process, whatever
// process later gets the same pid. ok is false if the process is gone or
// has exited (a zombie).
func StartTime(pid int) (ticks uint64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	_, state, f, err := Stat(pid)
	// f[0] is field 4, so field 22 is f[18].
	if err != nil || len(f) < 19 || state == 'Z' || state == 'X' {
		return 0, false
	}
	ticks, err = strconv.ParseUint(f[18], 10, 64)
	return ticks, err == nil
}
