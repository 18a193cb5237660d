package stdio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// The container's pseudo-terminal is made inside the container (so that its
// slave belongs to the container's devpts) and its master is passed out over
// a unix socket with SCM_RIGHTS. Either berth receives it (foreground `run
// -t`, `exec -t`) and relays it to its own terminal, or a caller such as
// containerd's shim listens on --console-socket and receives it directly.

// DialConsoleSocket connects to the caller's --console-socket and returns the
// connection as a file that can be handed to the container's init.
func DialConsoleSocket(path string) (*os.File, io.Closer, error) {
	return dialSocket("--console-socket", path)
}

// dialSocket connects to a unix socket a caller listens on, named by flag,
// and returns the connection as a file that can be handed to a process.
func dialSocket(flag, path string) (*os.File, io.Closer, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return f, conn, nil
}

// RecvFile receives one file descriptor sent with SCM_RIGHTS over socket.
func RecvFile(socket *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(socket.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive terminal: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil, errors.New("receive terminal: socket closed before a terminal was sent")
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return nil, fmt.Errorf("receive terminal: bad control message (%d messages, %v)", len(msgs), err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return nil, fmt.Errorf("receive terminal: expected one fd (%d, %v)", len(fds), err)
		}
		return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
	}
}

// HostConsole finds the terminal berth itself runs on: its stdio, or failing
// that its controlling terminal.
func HostConsole() (console.Console, error) {
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		c, err := console.ConsoleFromFile(f)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, console.ErrNotAConsole) {
			return nil, fmt.Errorf("terminal: %w", err)
		}
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return nil, fmt.Errorf("terminal requested but berth is not on one: %w", err)
	}
	c, err := console.ConsoleFromFile(tty)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	return c, nil
}

// relay copies between the container's terminal master and berth's own
// terminal, which it puts into raw mode so that keys reach the container
// untranslated.
type relay struct {
	host    console.Console
	epoller *console.Epoller
	master  *console.EpollConsole
	done    chan struct{}
}

func startRelay(host console.Console, masterFile *os.File) (*relay, error) {
	m, err := console.ConsoleFromFile(masterFile)
	if err != nil {
		return nil, fmt.Errorf("terminal master: %w", err)
	}
	// The container's output should arrive as the program wrote it; our own
	// terminal translates newlines already.
	if err := console.ClearONLCR(m.Fd()); err != nil {
		return nil, fmt.Errorf("terminal master: %w", err)
	}
	epoller, err := console.NewEpoller()
	if err != nil {
		return nil, fmt.Errorf("terminal epoll: %w", err)
	}
	em, err := epoller.Add(m)
	if err != nil {
		epoller.Close()
		return nil, fmt.Errorf("terminal epoll: %w", err)
	}
	if err := host.SetRaw(); err != nil {
		em.Close()
		epoller.Close()
		return nil, fmt.Errorf("set terminal raw: %w", err)
	}
	r := &relay{host: host, epoller: epoller, master: em, done: make(chan struct{})}
	go func() { _ = epoller.Wait() }()
	go func() { _, _ = io.Copy(em, os.Stdin) }()
	go func() {
		_, _ = io.Copy(os.Stdout, em)
		close(r.done)
	}()
	// In raw mode ^C reaches the container, not us; a SIGINT that still
	// reaches berth must not leave the user's terminal raw.
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt)
		<-ch
		_ = host.Reset()
		os.Exit(130)
	}()
	_ = r.resize()
	return r, nil
}

// resize gives the container's terminal the size of berth's own.
func (r *relay) resize() error {
	return r.master.ResizeFrom(r.host)
}

// close waits for the container's output to drain, then restores berth's
// terminal.
func (r *relay) close() {
	_ = r.master.Shutdown(r.epoller.CloseConsole)
	<-r.done
	_ = r.master.Close()
	_ = r.host.Reset()
}
