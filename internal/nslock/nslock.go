// Package nslock is a lock scoped to a network namespace, for berth
// processes that change what the namespace holds (its firewall, its links):
// berth has no daemon, and every container start runs its own hooks.
//
// The lock is the binding of an abstract unix socket rather than a lock
// file: its name lives in the network namespace the socket is made in,
// which is exactly the scope of what is changed (two namespaces never wait
// for each other, and two berth-net roots in one namespace do), the kernel
// releases it when its holder dies, however it dies, and it leaves nothing
// on disk.
package nslock

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Acquire takes the lock called name in the network namespace of the
// calling thread, waiting at most timeout, and returns the function that
// releases it.
func Acquire(name string, timeout time.Duration) (unlock func(), err error) {
	addr := &unix.SockaddrUnix{Name: "@" + name}
	deadline := time.Now().Add(timeout)
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("lock @%s: socket: %w", name, err)
		}
		err = unix.Bind(fd, addr)
		if err == nil {
			return func() { unix.Close(fd) }, nil // closing the socket frees the name
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("lock @%s: %w", name, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock @%s: still held after %v", name, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
