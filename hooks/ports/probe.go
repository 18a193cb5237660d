package ports

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// probeHostPort fails if a program on this host uses m's host address and
// port: it binds a socket there in the current network namespace (and, for
// TCP, listens) and closes it at once.
//
// The socket goes through x/sys/unix rather than package net because net
// sets SO_REUSEADDR on TCP listeners, under which Linux lets the bind share
// the port with another program's SO_REUSEADDR socket that is bound but not
// yet listening. Without it the kernel refuses every overlap: a socket on
// the wildcard or on the same address, an IPv6 dual-stack socket on the
// port, and also connections in TIME_WAIT that a program which has just
// exited leaves behind for a minute; being strict there costs a retry.
func probeHostPort(m portspec.Mapping) error {
	typ := unix.SOCK_STREAM
	if m.Protocol == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ports: probe host port %s: socket: %w", describe(m), err)
	}
	defer unix.Close(fd)

	sa := &unix.SockaddrInet4{Port: int(m.HostPort)}
	if m.HostIP.IsValid() {
		sa.Addr = m.HostIP.As4()
	}
	err = unix.Bind(fd, sa)
	if err == nil && typ == unix.SOCK_STREAM {
		err = unix.Listen(fd, 1)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EADDRINUSE):
		return errdefs.Conflict(fmt.Errorf("ports: host port %s is in use by another program on the host", describe(m)))
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("ports: host port %s: %s is not an address of this host", describe(m), m.HostIP)
	default:
		return fmt.Errorf("ports: probe host port %s: %w", describe(m), err)
	}
}
