package stdio

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/process"
)

// NotifySocket proxies systemd's sd_notify protocol. When berth runs under
// systemd with NOTIFY_SOCKET set, the container gets its own socket, bound
// in the container's state directory and mounted at /run/notify; berth
// relays the container's READY=1 to systemd's socket together with
// MAINPID, so systemd tracks the container's process rather than berth.
type NotifySocket struct {
	host   string // systemd's socket, from berth's own NOTIFY_SOCKET
	path   string // our socket, in the container's state directory
	socket *net.UnixConn
}

const notifyDirInContainer = "/run/notify"

// NewNotifySocket returns nil when berth was not given a NOTIFY_SOCKET.
func NewNotifySocket(host, stateDir string) *NotifySocket {
	if host == "" {
		return nil
	}
	return &NotifySocket{host: host, path: filepath.Join(stateDir, "notify", "notify.sock")}
}

// SetupSpec mounts the socket's directory into the container and points the
// process's NOTIFY_SOCKET at it.
func (n *NotifySocket) SetupSpec(spec *specs.Spec) {
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: notifyDirInContainer,
		Source:      filepath.Dir(n.path),
		Type:        "bind",
		Options:     []string{"bind", "nosuid", "noexec", "nodev", "ro"},
	})
	spec.Process.Env = append(spec.Process.Env,
		"NOTIFY_SOCKET="+filepath.Join(notifyDirInContainer, filepath.Base(n.path)))
}

// MakeDir creates the directory that is mounted into the container; it must
// exist before the container's mounts are made.
func (n *NotifySocket) MakeDir() error {
	if err := os.Mkdir(filepath.Dir(n.path), 0o755); err != nil {
		return fmt.Errorf("notify socket dir: %w", err)
	}
	return nil
}

// Bind starts listening on the container's socket.
func (n *NotifySocket) Bind() error {
	s, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	// The container's process may run as any user.
	if err := os.Chmod(n.path, 0o777); err != nil {
		s.Close()
		return fmt.Errorf("notify socket: %w", err)
	}
	n.socket = s
	return nil
}

// Close stops listening.
func (n *NotifySocket) Close() {
	if n.socket != nil {
		n.socket.Close()
	}
}

// Relay waits for the container to say READY=1 and passes it on to systemd
// with MAINPID=mainPid. It returns when that is done or when the process
// watched (watchPid) exits without saying it.
func (n *NotifySocket) Relay(watchPid, mainPid int) error {
	if n.socket == nil {
		return nil
	}
	ready := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			r, err := n.socket.Read(buf)
			if err != nil {
				return
			}
			for _, line := range bytes.Split(buf[:r], []byte{'\n'}) {
				if bytes.HasPrefix(line, []byte("READY=")) {
					ready <- append([]byte(nil), line...)
					return
				}
			}
		}
	}()
	gone := make(chan struct{})
	go func() {
		_ = process.WaitExit(watchPid, -1)
		close(gone)
	}()
	select {
	case line := <-ready:
		return n.notifyHost(line, mainPid)
	case <-gone:
		return nil
	}
}

func (n *NotifySocket) notifyHost(ready []byte, mainPid int) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.host, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.host, err)
	}
	defer c.Close()
	msg := append(append(ready, '\n'), []byte("MAINPID="+strconv.Itoa(mainPid)+"\n")...)
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.host, err)
	}
	return nil
}
