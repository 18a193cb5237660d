package aslimit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/process"
)

// PauseLevel is the log level (libcontainer.Process.LogLevel) with which
// berth asks an init to prepare for its RLIMIT_AS (see PauseBeforeExec).
// The init's log level is the only setting berth can pass to it besides the
// process itself: libcontainer builds the init's environment alone.
const PauseLevel = logrus.TraceLevel

// standardAboutToWait is what libcontainer v1.5.2's container init logs (at
// debug level) after its last step that allocates and before it waits on
// the exec fifo, where `start` sets its RLIMIT_AS.
const standardAboutToWait = "init: about to wait on exec fifo"

// setnsAboutToExec is what libcontainer v1.5.2's setns init logs (at debug
// level) after its last step that allocates (seccomp filter, credentials,
// the lookup of the program) and after it has closed its sync pipe; only
// closing descriptors and the execve follow. PauseWatch fails loudly if a
// later libcontainer no longer logs it.
const setnsAboutToExec = "setns_init: about to exec"

// PauseBeforeExec is called in berth's own init, before libcontainer takes
// over. An init whose log level is PauseLevel then gets ready for its
// RLIMIT_AS at libcontainer's last step before the limit is set:
//   - an exec'd process's init stops itself (SIGSTOP) when libcontainer logs
//     setnsAboutToExec, until the parent, `berth exec`, has set its
//     RLIMIT_AS (PauseWatch) and sent SIGCONT. A container's init needs no
//     such pause: it waits on the exec fifo (standardAboutToWait).
//   - both warm up first (warmUp).
func PauseBeforeExec() {
	logrus.AddHook(pauseHook{})
}

type pauseHook struct{}

func (pauseHook) Levels() []logrus.Level { return []logrus.Level{logrus.DebugLevel} }

func (pauseHook) Fire(e *logrus.Entry) error {
	if !e.Logger.IsLevelEnabled(PauseLevel) {
		return nil
	}
	switch e.Message {
	case standardAboutToWait:
		warmUp(e)
	case setnsAboutToExec:
		warmUp(e)
		// Stops the whole process; SIGCONT resumes it here.
		if err := unix.Kill(unix.Getpid(), unix.SIGSTOP); err != nil {
			// A seccomp profile that refuses kill(2), say. The program
			// must not run without its limit: the init ends here, and
			// berth exec reports it (PauseWatch.Finish).
			fmt.Fprintf(os.Stderr, "berth init: cannot stop to have RLIMIT_AS set (%v): the program is not run without its limit\n", err)
			os.Exit(1)
		}
	}
	return nil
}

// warmUp runs, before the limit, the steps after it that need fresh
// memory from the Go runtime: listing /proc/self/fd to close descriptors
// (utils.UnsafeCloseFrom), whose 8 KiB directory buffer then comes back
// from the runtime's pool instead of a new span, and formatting this very
// log entry, which logrus does after its hooks have fired. Under a
// RLIMIT_AS below the init's size, a new span or its bookkeeping needs a
// new mapping, which fails and kills the init ("fatal error: runtime: out
// of memory"), as it did in about 1 of 50 runs before.
func warmUp(e *logrus.Entry) {
	if d, err := os.Open("/proc/self/fd"); err == nil {
		_, _ = d.Readdirnames(-1)
		_ = d.Close()
	}
	if e.Logger.Formatter != nil {
		_, _ = e.Logger.Formatter.Format(e)
	}
}

// PauseWatch finds the init of an exec'd process among berth's children
// when it pauses before its execve (PauseBeforeExec), sets its RLIMIT_AS
// there and lets it go on. It must run while libcontainer starts the
// process: libcontainer's Run only returns once the init has closed its
// log pipe, which it does after the pause.
type PauseWatch struct {
	stop chan struct{}
	done chan pauseResult
}

type pauseResult struct {
	pid int // the init that paused; 0 if none did
	err error
}

// WatchPause starts watching for the pause; Finish ends the watch.
func WatchPause(rl *configs.Rlimit) *PauseWatch {
	w := &PauseWatch{stop: make(chan struct{}), done: make(chan pauseResult, 1)}
	go w.watch(rl)
	return w
}

func (w *PauseWatch) watch(rl *configs.Rlimit) {
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		if pid := pausedChild(); pid > 0 {
			err := Apply(pid, rl)
			if err != nil {
				// Not left stopped: libcontainer waits for it to go on.
				_ = unix.Kill(pid, unix.SIGKILL)
			} else if err = unix.Kill(pid, unix.SIGCONT); err != nil && err != unix.ESRCH {
				err = fmt.Errorf("resume process %d after setting its RLIMIT_AS: %w", pid, err)
			} else {
				err = nil
			}
			w.done <- pauseResult{pid: pid, err: err}
			return
		}
		select {
		case <-w.stop:
			w.done <- pauseResult{}
			return
		case <-time.After(delay):
		}
	}
}

// Finish ends the watch once libcontainer has started pid (0 if it failed
// to) and returns the outcome. libcontainer reports a process started only
// once its init is past the pause, so a started process that never paused
// exec'd its program without the limit (or was killed from outside before
// it could): either way an error, and the caller kills what is left.
func (w *PauseWatch) Finish(pid int) error {
	close(w.stop)
	r := <-w.done
	if r.pid != 0 || pid == 0 {
		return r.err
	}
	comm, _, _, err := process.Stat(pid)
	if err != nil {
		return fmt.Errorf("process %d ended without pausing before its execve: RLIMIT_AS not set", pid)
	}
	if comm != process.InitComm {
		return fmt.Errorf("process %d exec'd %q without pausing before its execve: RLIMIT_AS not set", pid, comm)
	}
	return fmt.Errorf("process %d is still in berth's init after libcontainer started it, without having paused: RLIMIT_AS not set", pid)
}

// pausedChild returns a child of berth's that is libcontainer's init,
// stopped: the one PauseBeforeExec paused (berth execs one process at a
// time). Each thread lists the children it forked.
func pausedChild() int {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, state, _, err := process.Stat(pid); err == nil && comm == process.InitComm && state == 'T' {
				return pid
			}
		}
	}
	return 0
}
