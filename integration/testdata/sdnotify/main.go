// Command sdnotify is a container init for the NOTIFY_SOCKET test: it sends
// READY=1 to $NOTIFY_SOCKET as sd_notify(3) does, then sleeps. busybox has
// no tool that sends a unix datagram. The test builds it statically
// (CGO_ENABLED=0) into a private copy of the rootfs.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		fmt.Fprintln(os.Stderr, "sdnotify: NOTIFY_SOCKET is not set")
		os.Exit(1)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnotify:", err)
		os.Exit(1)
	}
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		fmt.Fprintln(os.Stderr, "sdnotify:", err)
		os.Exit(1)
	}
	conn.Close()
	time.Sleep(time.Hour)
}
