// Command bt-helper is the integration tests' network helper, put into each
// test container's rootfs: the busybox there has no UDP in its nc and cannot
// print a TCP peer's address. It uses the standard library only and is built
// static (CGO_ENABLED=0) so it runs in that rootfs. `make integration` builds
// it once and hands its path to the tests in BERTH_TEST_HELPER.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bt-helper udp-echo PORT | udp-send [-sport N] [-tries N] [-interval D] ADDR PORT MSG | tcp-peer PORT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "udp-echo":
		udpEcho(os.Args[2])
	case "udp-send":
		udpSend(os.Args[2:])
	case "tcp-peer":
		tcpPeer(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// udpEcho answers every datagram with "echo PAYLOAD from PEER".
func udpEcho(port string) {
	c, err := net.ListenPacket("udp4", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	buf := make([]byte, 2048)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		reply := fmt.Sprintf("echo %s from %s", buf[:n], peer)
		c.WriteTo([]byte(reply), peer)
		fmt.Println(reply)
	}
}

// udpSend sends MSG from one socket (source port -sport) up to -tries
// times, waiting -interval for a reply after each, and prints the reply.
func udpSend(args []string) {
	fs := flag.NewFlagSet("udp-send", flag.ExitOnError)
	sport := fs.Int("sport", 0, "source port")
	tries := fs.Int("tries", 10, "datagrams to send")
	interval := fs.Duration("interval", 300*time.Millisecond, "wait for a reply after each")
	fs.Parse(args)
	if fs.NArg() != 3 {
		fmt.Fprintln(os.Stderr, "udp-send: ADDR PORT MSG")
		os.Exit(2)
	}
	raddr, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(fs.Arg(0), fs.Arg(1)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: *sport})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buf := make([]byte, 2048)
	for i := 0; i < *tries; i++ {
		if _, err := c.WriteTo([]byte(fs.Arg(2)), raddr); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		c.SetReadDeadline(time.Now().Add(*interval))
		if n, from, err := c.ReadFrom(buf); err == nil {
			fmt.Printf("%s (reply from %s)\n", buf[:n], from)
			os.Exit(0)
		}
	}
	fmt.Fprintf(os.Stderr, "no reply from %s after %d datagrams\n", raddr, *tries)
	os.Exit(1)
}

// tcpPeer tells every TCP client its address as the server sees it.
func tcpPeer(port string) {
	l, err := net.Listen("tcp4", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(c, "peer %s\n", c.RemoteAddr())
		fmt.Printf("peer %s\n", c.RemoteAddr())
		c.Close()
	}
}
