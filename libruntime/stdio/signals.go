package stdio

import (
	"os"
	"os/signal"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Forwarder makes a foreground berth behave like the process it runs: every
// signal berth receives is passed to the process, terminal resizes are
// passed to its terminal, and berth exits with the process's exit code once
// it has reaped it.
type Forwarder struct {
	signals chan os.Signal
}

// NewForwarder starts catching signals. Call it before the process starts,
// so that no SIGCHLD is lost. With subreaper set, berth adopts orphans from
// the container (the process may double-fork); it reaps them as they exit.
func NewForwarder(subreaper bool) *Forwarder {
	if subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			logrus.Warnf("become subreaper: %v", err)
		}
	}
	f := &Forwarder{signals: make(chan os.Signal, 2048)}
	signal.Notify(f.signals)
	return f
}

// Stop stops catching signals.
func (f *Forwarder) Stop() {
	signal.Stop(f.signals)
}

// Forward relays signals to p until p exits and returns its exit code, with
// 128+n for a process killed by signal n, as shells report it.
func (f *Forwarder) Forward(p *libcontainer.Process, pio *ProcessIO) (int, error) {
	pid, err := p.Pid()
	if err != nil {
		return -1, err
	}
	pio.Resize()
	for s := range f.signals {
		switch s {
		case unix.SIGWINCH:
			pio.Resize()
		case unix.SIGCHLD:
			for _, e := range reapAll() {
				if e.pid == pid {
					// Let libcontainer release what it holds for p.
					_, _ = p.Wait()
					return e.status, nil
				}
			}
		case unix.SIGURG:
			// The Go runtime's own preemption signal, not meant for the process.
		default:
			if err := p.Signal(s); err != nil {
				logrus.Debugf("forward %v to %d: %v", s, pid, err)
			}
		}
	}
	return -1, nil
}

type exited struct{ pid, status int }

// reapAll collects every child that has exited: the process and any
// orphans adopted as subreaper.
func reapAll() []exited {
	var out []exited
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return out
		}
		out = append(out, exited{pid: pid, status: ExitCode(ws)})
	}
}

// ExitCode turns a wait status into a shell-style exit code.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
