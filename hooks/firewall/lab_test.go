package firewall

// The lab: tiny topologies of network namespaces made by the tests, so that
// every rule and every packet stays inside namespaces the test owns.
//
//	  other host (192.0.2.2)            host (192.0.2.1 on up0)              containers
//	  eth0 ------------------- veth ---- up0          bridge <net> (gateway) --- veth --- eth0 (c1, c2, ...)
//
// The host namespace has ip_forward=1 and route_localnet=1 on each bridge,
// as berth's network hook sets them; the other host's lo stays down so the
// loopback test can route 127.0.0.0/8 to the host.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-runtime/berth/internal/testenv"
)

const (
	reachTimeout   = 2 * time.Second        // a connection that should work
	blockedTimeout = 400 * time.Millisecond // how long to wait before calling something unreachable
)

func TestMain(m *testing.M) {
	// Keep the tests' network lock out of the machine's /run.
	// A lock of this test binary's own, apart from any berth running here.
	lockName = fmt.Sprintf("berth-test-%d/firewall.lock", os.Getpid())
	code := m.Run()
	os.Exit(code)
}

// requireLab skips tests that need root and the ip tool (fails them under
// CI=true).
func requireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root (network namespaces, netfilter)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Missing(t, "needs iproute2's ip")
	}
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// nsT is a named network namespace made by the test.
type nsT struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle // netlink handle bound to the namespace
}

// newNS creates /run/netns/bt-fw-<role>-<random> and removes it in cleanup.
func newNS(t testing.TB, role string) *nsT {
	t.Helper()
	name := "bt-fw-" + role + "-" + randomSuffix(t)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &nsT{name: name}
	t.Cleanup(func() {
		if ns.nl != nil {
			ns.nl.Close()
		}
		if ns.h.IsOpen() {
			ns.h.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.h = h
	if ns.nl, err = netlink.NewHandleAt(h); err != nil {
		t.Fatal(err)
	}
	return ns
}

// run calls fn on a fresh OS thread that is in the namespace. The thread is
// never unlocked, so it exits with the goroutine and no other goroutine ever
// runs in the namespace by accident.
func (ns *nsT) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns.h); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// must runs fn in the namespace and fails the test on error.
func (ns *nsT) must(t testing.TB, what string, fn func() error) {
	t.Helper()
	if err := ns.run(fn); err != nil {
		t.Fatalf("%s (in %s): %v", what, ns.name, err)
	}
}

// sysctl writes a /proc/sys/net value; /proc/sys/net shows the namespace of
// the thread that opens it, which run() provides.
func (ns *nsT) sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	ns.must(t, "sysctl "+key, func() error { return os.WriteFile(path, []byte(value), 0o644) })
}

// output runs a command (iptables-save, nft, ...) in the namespace.
func (ns *nsT) output(t testing.TB, name string, args ...string) string {
	t.Helper()
	var out []byte
	ns.must(t, name+" "+strings.Join(args, " "), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		out, err = exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	return string(out)
}

func (ns *nsT) linkUp(t testing.TB, name string) {
	t.Helper()
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %s: %v", ns.name, name, err)
	}
	if err := ns.nl.LinkSetUp(l); err != nil {
		t.Fatalf("%s: up %s: %v", ns.name, name, err)
	}
}

func (ns *nsT) addAddr(t testing.TB, link, cidr string) {
	t.Helper()
	l, err := ns.nl.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.nl.AddrAdd(l, a); err != nil {
		t.Fatalf("%s: addr %s on %s: %v", ns.name, cidr, link, err)
	}
}

func (ns *nsT) addRoute(t testing.TB, dst string, via netip.Addr) {
	t.Helper()
	r := &netlink.Route{Gw: via.AsSlice()}
	if dst != "" {
		_, ipnet, err := net.ParseCIDR(dst)
		if err != nil {
			t.Fatal(err)
		}
		r.Dst = ipnet
	}
	if err := ns.nl.RouteAdd(r); err != nil {
		t.Fatalf("%s: route %q via %v: %v", ns.name, dst, via, err)
	}
}

// lab is the host, the other host, and the bridges and containers added to it.
type lab struct {
	t         testing.TB
	host      *nsT
	other     *nsT
	hostAddr  netip.Addr // the host's address towards the other host
	otherAddr netip.Addr
	n         int // containers made so far, for veth names
}

func newLab(t testing.TB) *lab {
	t.Helper()
	requireLab(t)
	l := &lab{t: t, host: newNS(t, "host"), other: newNS(t, "other"),
		hostAddr: netip.MustParseAddr("192.0.2.1"), otherAddr: netip.MustParseAddr("192.0.2.2")}
	l.host.linkUp(t, "lo")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(l.other.h)}
	if err := l.host.nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth to other host: %v", err)
	}
	l.host.addAddr(t, "up0", "192.0.2.1/24")
	l.host.linkUp(t, "up0")
	l.other.addAddr(t, "eth0", "192.0.2.2/24")
	l.other.linkUp(t, "eth0")
	l.host.sysctl(t, "net.ipv4.ip_forward", "1")
	t.Cleanup(func() {
		if t.Failed() {
			l.dumpRules()
		}
	})
	return l
}

// dumpRules logs the host's rules, to see why a test failed.
func (l *lab) dumpRules() {
	for _, cmd := range [][]string{{"iptables-save"}, {"iptables-legacy-save"}, {"nft", "list", "ruleset"}} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			continue
		}
		var out []byte
		_ = l.host.run(func() error {
			out, _ = exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
			return nil
		})
		l.t.Logf("host %s:\n%s", strings.Join(cmd, " "), out)
	}
}

// addNetwork makes a bridge in the host, as berth's network hook would.
func (l *lab) addNetwork(name, bridge, subnet string, internal bool) Network {
	t := l.t
	t.Helper()
	p := netip.MustParsePrefix(subnet)
	n := Network{Name: name, Bridge: bridge, Subnet: p, Gateway: p.Addr().Next(), Internal: internal}
	if err := l.host.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}); err != nil {
		t.Fatalf("bridge %s: %v", bridge, err)
	}
	l.host.addAddr(t, bridge, netip.PrefixFrom(n.Gateway, p.Bits()).String())
	l.host.linkUp(t, bridge)
	l.host.sysctl(t, "net.ipv4.conf."+bridge+".route_localnet", "1")
	return n
}

// addContainer makes a container namespace on network n at the given host
// number of the subnet (2 -> 10.88.0.2), with a default route via the gateway.
func (l *lab) addContainer(n Network, hostNum int) (*nsT, netip.Addr) {
	t := l.t
	t.Helper()
	l.n++
	ns := newNS(t, fmt.Sprintf("c%d", l.n))
	addr := n.Subnet.Addr()
	for i := 0; i < hostNum; i++ {
		addr = addr.Next()
	}
	hostSide := fmt.Sprintf("vc%d", l.n)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostSide}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.h)}
	if err := l.host.nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth for container: %v", err)
	}
	port, err := l.host.nl.LinkByName(hostSide)
	if err != nil {
		t.Fatal(err)
	}
	br, err := l.host.nl.LinkByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.host.nl.LinkSetMaster(port, br); err != nil {
		t.Fatal(err)
	}
	// Hairpin, so a container can reach itself through its published port.
	if err := l.host.nl.LinkSetHairpin(port, true); err != nil {
		t.Fatal(err)
	}
	l.host.linkUp(t, hostSide)
	ns.linkUp(t, "lo")
	ns.addAddr(t, "eth0", netip.PrefixFrom(addr, n.Subnet.Bits()).String())
	ns.linkUp(t, "eth0")
	ns.addRoute(t, "", n.Gateway)
	return ns, addr
}

// --- traffic -------------------------------------------------------------

// serve starts a TCP or UDP server in ns on port; it answers each message
// with "<name> <client address> <message>", so a client learns who answered
// and from which source address the server saw it.
func serve(t testing.TB, ns *nsT, proto string, port int, name string) {
	t.Helper()
	addr := fmt.Sprintf(":%d", port)
	switch proto {
	case "tcp":
		var ln net.Listener
		ns.must(t, "listen "+addr, func() (err error) { ln, err = net.Listen("tcp4", addr); return err })
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					line, err := bufio.NewReader(c).ReadString('\n')
					if err != nil {
						return
					}
					ip := c.RemoteAddr().(*net.TCPAddr).IP
					fmt.Fprintf(c, "%s %s %s", name, ip, line)
				}()
			}
		}()
	case "udp":
		var pc net.PacketConn
		ns.must(t, "listen udp "+addr, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err })
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				ip := from.(*net.UDPAddr).IP
				pc.WriteTo([]byte(fmt.Sprintf("%s %s %s", name, ip, buf[:n])), from)
			}
		}()
	}
}

// exchange sends a token from ns to addr over proto (from local port
// lport if non-zero) and returns the server's name and the client address it saw.
func exchange(ns *nsT, proto, addr string, lport int, timeout time.Duration) (server, seenAs string, err error) {
	token := fmt.Sprintf("token-%d\n", time.Now().UnixNano())
	var reply string
	err = ns.run(func() error {
		d := net.Dialer{Timeout: timeout}
		if lport != 0 {
			d.LocalAddr = &net.UDPAddr{Port: lport}
		}
		c, err := d.Dial(proto+"4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte(token)); err != nil {
			return err
		}
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		reply = string(buf[:n])
		return nil
	})
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(reply)
	if len(f) != 3 || f[2]+"\n" != token {
		return "", "", fmt.Errorf("bad reply %q to %q", reply, token)
	}
	return f[0], f[1], nil
}

// reach asserts that ns reaches the server named want at addr; it returns
// the client address the server saw.
func reach(t testing.TB, ns *nsT, proto, addr, want string) string {
	t.Helper()
	server, seenAs, err := exchange(ns, proto, addr, 0, reachTimeout)
	if err != nil {
		t.Errorf("%s: %s %s should reach %s: %v", ns.name, proto, addr, want, err)
		return ""
	}
	if server != want {
		t.Errorf("%s: %s %s answered by %s, want %s", ns.name, proto, addr, server, want)
	}
	return seenAs
}

// blocked asserts that nothing answers ns at addr within blockedTimeout.
func blocked(t testing.TB, ns *nsT, proto, addr string) {
	t.Helper()
	// A timeout (dropped) and a refusal (nothing of the container's there) both count.
	if server, _, err := exchange(ns, proto, addr, 0, blockedTimeout); err == nil {
		t.Errorf("%s: %s %s answered by %s, want no answer", ns.name, proto, addr, server)
	}
}
