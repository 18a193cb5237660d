package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/process"
	"github.com/berth-runtime/berth/libruntime/aslimit"
	"github.com/berth-runtime/berth/libruntime/lifecycle"
	"github.com/berth-runtime/berth/libruntime/stdio"
)

type action int

const (
	actCreate action = iota // create: start the init, leave it waiting for `start`
	actRun                  // run: create and start at once
	actExec                 // exec: start another process in a running container
)

// runner starts one process in a container and, in the foreground, stays
// with it until it exits. create, run and exec share it.
type runner struct {
	container *libcontainer.Container
	action    action
	detach    bool
	// keep leaves a foreground `run`'s container in place after it exits.
	keep           bool
	subreaper      bool
	consoleSocket  string
	pidfdSocket    string
	pidFile        string
	preserveFDs    int
	notify         *stdio.NotifySocket
	hooks          lifecycle.Deferred // poststart and poststop, run by berth
	subCgroupPaths map[string]string
}

func (r *runner) ownsContainer() bool { return r.action != actExec }

// userProcess is the process a runner starts: the spec's, converted for
// libcontainer, with its RLIMIT_AS held back from libcontainer (see
// package aslimit) in addressSpace, for berth to set on the init at the
// last moment before it execs the program.
type userProcess struct {
	*libcontainer.Process
	spec         *specs.Process
	addressSpace *configs.Rlimit
}

// newUserProcess converts spec and works out, once, the RLIMIT_AS to hold
// back: create passes it on to `start`, run and exec set it themselves.
func newUserProcess(spec *specs.Process) (*userProcess, error) {
	p, err := newProcess(spec)
	if err != nil {
		return nil, err
	}
	as, err := aslimit.Defer(p.Rlimits)
	if err != nil {
		return nil, err
	}
	return &userProcess{Process: p, spec: spec, addressSpace: as}, nil
}

// run starts up in the container and returns the exit code berth should
// exit with.
func (r *runner) run(up *userProcess) (code int, retErr error) {
	detach := r.detach || r.action == actCreate
	defer func() {
		if retErr != nil && r.ownsContainer() {
			r.destroy()
		}
	}()
	cfg := r.container.Config()
	rootUID, err := cfg.HostRootUID()
	if err != nil {
		return -1, err
	}
	rootGID, err := cfg.HostRootGID()
	if err != nil {
		return -1, err
	}
	opts := stdio.Options{
		Terminal: up.spec.Terminal, Detach: detach, ConsoleSocket: r.consoleSocket,
		PidfdSocket: r.pidfdSocket, RootUID: rootUID, RootGID: rootGID,
	}
	if err := opts.CheckTerminal(); err != nil {
		return -1, err
	}
	p := up.Process
	p.Init = r.ownsContainer()
	p.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	if up.addressSpace != nil {
		// Asks the init to get ready for its limit (aslimit.PauseBeforeExec);
		// its extra log lines are filtered by berth's own level.
		p.LogLevel = strconv.Itoa(int(aslimit.PauseLevel))
	}
	p.SubCgroupPaths = r.subCgroupPaths
	if err := r.passFiles(p); err != nil {
		return -1, err
	}

	var fwd *stdio.Forwarder
	if !detach {
		// Catch signals before the process exists, so no SIGCHLD is missed.
		fwd = stdio.NewForwarder(r.subreaper)
		defer fwd.Stop()
	}
	pio, err := stdio.Setup(p, opts)
	if err != nil {
		return -1, err
	}
	defer pio.Close()

	if err := r.startProcess(up); err != nil {
		return -1, err
	}
	crashpoint.Hit("create.started")
	if err := pio.AfterStart(); err != nil {
		r.terminate(p)
		return -1, err
	}
	pid, _ := p.Pid()
	if r.pidFile != "" {
		if err := stdio.WritePidFile(r.pidFile, pid); err != nil {
			r.terminate(p)
			return -1, err
		}
	}
	if r.action == actRun {
		if err := afterStart(r.container, pid, r.hooks); err != nil {
			r.terminate(p)
			return -1, err
		}
	}
	if detach {
		if r.action != actCreate {
			// Best effort: the pid is reported either way.
			_ = lifecycle.WaitExecuted(pid, 2*time.Second, lifecycle.ExitEndsWait)
		}
		if r.notify != nil {
			if err := r.notify.Relay(pid, pid); err != nil {
				logrus.Warn(err)
			}
		}
		return 0, nil
	}
	if r.notify != nil {
		go func() {
			if err := r.notify.Relay(pid, os.Getpid()); err != nil {
				logrus.Warn(err)
			}
		}()
	}
	code, err = fwd.Forward(p, pio)
	if err != nil {
		r.terminate(p)
		return -1, err
	}
	if r.action == actRun && !r.keep {
		r.destroy()
	}
	return code, nil
}

// startProcess starts up: for create, up to the init waiting for `start`;
// for run and exec, through to the user's program. A held-back RLIMIT_AS
// is set on the init at its last stop before the execve: for run (as for
// `start`) while it waits on the exec fifo, for exec at the pause berth's
// init makes for it (aslimit.PauseWatch).
func (r *runner) startProcess(up *userProcess) error {
	switch r.action {
	case actCreate:
		return r.container.Start(up.Process)
	case actRun:
		if err := r.container.Start(up.Process); err != nil {
			return err
		}
		pid, err := up.Pid()
		if err == nil && up.addressSpace != nil {
			aslimit.WaitForExecFifo(pid, 10*time.Second)
			err = aslimit.Apply(pid, up.addressSpace)
		}
		if err != nil {
			// Its stdio is not released before it is gone; the caller
			// then destroys the container.
			r.terminate(up.Process)
			return fmt.Errorf("run %s: %w", r.container.ID(), err)
		}
		return r.container.Exec()
	}
	if up.addressSpace == nil {
		return r.container.Run(up.Process)
	}
	watch := aslimit.WatchPause(up.addressSpace)
	runErr := r.container.Run(up.Process)
	pid := 0
	if runErr == nil {
		pid, _ = up.Pid()
	}
	if err := watch.Finish(pid); err != nil {
		if runErr == nil {
			// The program must not go on without its limit.
			r.terminate(up.Process)
		}
		return fmt.Errorf("exec %s: %w", r.container.ID(), errors.Join(err, runErr))
	}
	return runErr
}

// passFiles hands the process the files it should find at fd 3 and up:
// first sockets passed to berth by systemd socket activation (LISTEN_FDS),
// then --preserve-fds more of berth's own descriptors.
func (r *runner) passFiles(p *libcontainer.Process) error {
	if r.ownsContainer() {
		if n := listenFDs(); n > 0 {
			p.Env = append(p.Env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
			for fd := 3; fd < 3+n; fd++ {
				p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)))
			}
		}
	}
	base := 3 + len(p.ExtraFiles)
	for fd := base; fd < base+r.preserveFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--preserve-fds %d: fd %d is not open: %w", r.preserveFDs, fd, err)
		}
		p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(fd), "preserved-fd-"+strconv.Itoa(fd)))
	}
	return nil
}

// listenFDs reads systemd's socket-activation variables, which are meant
// for berth only if LISTEN_PID is berth's own pid.
func listenFDs() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// execWaitLimit bounds the wait for an init to exec the user's program
// when only libcontainer's last steps (seccomp, closing fds, execve), and no
// startContainer hooks, stand in between: before the poststart hooks run.
const execWaitLimit = 10 * time.Second

// afterStart finishes the start of a container's user process (lifecycle
// steps 7-9): startContainer hooks have run inside the init, and then the
// poststart hooks run. libcontainer's Exec returns when the init has passed
// the exec fifo, a moment before it execs the program, so without the wait
// a poststart hook would often run first.
func afterStart(c *libcontainer.Container, pid int, hooks lifecycle.Deferred) error {
	if timeout, ok := lifecycle.StartContainerTimeout(c.Config()); ok {
		if err := waitStartContainerHooks(pid, timeout); err != nil {
			return err
		}
	} else if len(hooks.Poststart) > 0 {
		// Bounded: the hooks run even if the exec has not been seen.
		_ = lifecycle.WaitExecuted(pid, execWaitLimit, lifecycle.ExitEndsWait)
	}
	return lifecycle.RunPoststart(c, hooks)
}

// waitStartContainerHooks waits for the startContainer hooks, which run
// inside the init after `start` has released it: if one fails, the init
// exits instead of exec'ing the user's program, which the spec makes an
// error of `start` (lifecycle step 7). Hooks still running after their
// timeouts are no longer waited for.
func waitStartContainerHooks(pid int, timeout time.Duration) error {
	err := lifecycle.WaitExecuted(pid, timeout, lifecycle.ExitIsError)
	switch {
	case errors.Is(err, lifecycle.ErrExitedBeforeExec):
		return errors.New("startContainer hook failed: the container's init exited before running the process")
	case errors.Is(err, lifecycle.ErrStillInit):
		logrus.Warnf("startContainer hooks still running after %s; not waiting for them", timeout)
	}
	return nil
}

func (r *runner) destroy() {
	if err := lifecycle.Destroy(r.container, r.hooks); err != nil {
		logrus.Warn(err)
	}
}

func (r *runner) terminate(p *libcontainer.Process) {
	_ = p.Signal(unix.SIGKILL)
	_, _ = p.Wait()
}

// killAndDestroy stops a container's processes and removes it: SIGKILL
// to the init (which takes its pid namespace with it; libcontainer kills
// the whole cgroup when the namespace is shared), wait for the init to be
// gone, then destroy, which also runs the poststop hooks.
func killAndDestroy(c *libcontainer.Container, hooks lifecycle.Deferred) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	w := process.Watch(st.InitProcessPid)
	defer w.Close()
	err = c.Signal(unix.SIGKILL)
	if errors.Is(err, libcontainer.ErrNotRunning) {
		return lifecycle.Destroy(c, hooks) // already stopped; its pid may name another process by now
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", c.ID(), err)
	}
	if err := w.Wait(10 * time.Second); err != nil {
		return fmt.Errorf("kill %s: init %d: %w", c.ID(), st.InitProcessPid, err)
	}
	crashpoint.Hit("delete.killed")
	return lifecycle.Destroy(c, hooks)
}
