package stdio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Options says how a process's standard streams are wired.
type Options struct {
	Terminal      bool   // process.terminal: give it a pseudo-terminal
	Detach        bool   // berth exits once the process runs (create, run -d, exec -d)
	ConsoleSocket string // where to send the terminal master when detached
	// PidfdSocket, if set, is a unix socket the process sends a pidfd of
	// itself to (SCM_RIGHTS), as runc's --pidfd-socket: a caller such as
	// containerd then signals and waits on it without pid reuse races.
	PidfdSocket string
	// RootUID and RootGID own the pipes a foreground process writes to, so
	// that a container root mapped to another host uid can still use them.
	RootUID, RootGID int
}

// ProcessIO holds what berth keeps open on a process's behalf.
type ProcessIO struct {
	postStart []io.Closer // our copies of fds handed to the process
	closers   []io.Closer // pipe ends berth relays from
	copies    sync.WaitGroup
	consoleC  chan error // foreground terminal: result of receiving the master
	relayMu   sync.Mutex
	relay     *relay
}

// CheckTerminal refuses combinations runc refuses: a detached terminal has
// nobody to talk to unless a console socket receives it, and a console
// socket makes no sense without a detached terminal.
func (o Options) CheckTerminal() error {
	if o.Detach && o.Terminal && o.ConsoleSocket == "" {
		return errors.New("--console-socket: required when the process has a terminal and berth detaches (create, run -d, exec -d)")
	}
	if (!o.Detach || !o.Terminal) && o.ConsoleSocket != "" {
		return errors.New("--console-socket: only valid when the process has a terminal (process.terminal or -t) and berth detaches")
	}
	return nil
}

// Setup wires p's standard streams according to o. Call AfterStart once the
// process runs, and Close when berth is done with it.
func Setup(p *libcontainer.Process, o Options) (_ *ProcessIO, retErr error) {
	pio := &ProcessIO{}
	defer func() {
		if retErr != nil {
			pio.Close()
		}
	}()
	if o.PidfdSocket != "" {
		// libcontainer's init sends the pidfd itself, from inside the
		// container, before it runs the program.
		f, conn, err := dialSocket("--pidfd-socket", o.PidfdSocket)
		if err != nil {
			return nil, err
		}
		pio.postStart = append(pio.postStart, f, conn)
		p.PidfdSocket = f
	}
	switch {
	case o.Terminal && o.Detach:
		f, conn, err := DialConsoleSocket(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		pio.postStart = append(pio.postStart, f, conn)
		p.ConsoleSocket = f
	case o.Terminal:
		host, err := HostConsole()
		if err != nil {
			return nil, err
		}
		parent, child, err := socketPair("console")
		if err != nil {
			return nil, err
		}
		p.ConsoleSocket = child
		pio.postStart = append(pio.postStart, parent, child)
		pio.consoleC = make(chan error, 1)
		go func() {
			master, err := RecvFile(parent)
			if err == nil {
				var r *relay
				r, err = startRelay(host, master)
				pio.relayMu.Lock()
				pio.relay = r
				pio.relayMu.Unlock()
			}
			pio.consoleC <- err
		}()
	case o.Detach:
		// Whoever started berth owns the streams (a shim's fifos, a
		// supervisor's log pipe): the process inherits them as they are.
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	default:
		pipes, err := p.InitializeIO(o.RootUID, o.RootGID)
		if err != nil {
			return nil, fmt.Errorf("stdio pipes: %w", err)
		}
		pio.closers = append(pio.closers, pipes.Stdin, pipes.Stdout, pipes.Stderr)
		for _, s := range []any{p.Stdin, p.Stdout, p.Stderr} {
			if c, ok := s.(io.Closer); ok {
				pio.postStart = append(pio.postStart, c)
			}
		}
		go func() {
			_, _ = io.Copy(pipes.Stdin, os.Stdin)
			_ = pipes.Stdin.Close()
		}()
		pio.copies.Add(2)
		go pio.copy(os.Stdout, pipes.Stdout)
		go pio.copy(os.Stderr, pipes.Stderr)
	}
	return pio, nil
}

func (pio *ProcessIO) copy(w io.Writer, r io.ReadCloser) {
	defer pio.copies.Done()
	_, _ = io.Copy(w, r)
	_ = r.Close()
}

// AfterStart waits for a foreground terminal to arrive and drops berth's
// copies of the descriptors the process now owns, so that the process's
// exit is seen as EOF.
func (pio *ProcessIO) AfterStart() error {
	if pio.consoleC != nil {
		if err := <-pio.consoleC; err != nil {
			return err
		}
	}
	for _, c := range pio.postStart {
		_ = c.Close()
	}
	pio.postStart = nil
	return nil
}

// Resize copies berth's terminal size to the container's terminal, if any.
func (pio *ProcessIO) Resize() {
	pio.relayMu.Lock()
	defer pio.relayMu.Unlock()
	if pio.relay != nil {
		_ = pio.relay.resize()
	}
}

// Close drains the process's output and releases everything.
func (pio *ProcessIO) Close() {
	for _, c := range pio.postStart {
		_ = c.Close()
	}
	pio.relayMu.Lock()
	r := pio.relay
	pio.relayMu.Unlock()
	if r != nil {
		r.close()
	}
	pio.copies.Wait()
	for _, c := range pio.closers {
		_ = c.Close()
	}
}

func socketPair(name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_LOCAL, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair %s: %w", name, err)
	}
	return os.NewFile(uintptr(fds[1]), name+"-parent"), os.NewFile(uintptr(fds[0]), name+"-child"), nil
}
