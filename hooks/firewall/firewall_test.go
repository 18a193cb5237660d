package firewall

import (
	"errors"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/testenv"
)

// --- tests that need no privileges ------------------------------------------

func TestNewUnknownBackend(t *testing.T) {
	_, err := New("pf")
	if err == nil || !strings.Contains(err.Error(), `"pf"`) {
		t.Fatalf("New(\"pf\") = %v, want an error naming \"pf\"", err)
	}
}

func testNetwork() Network {
	return Network{Name: "front", Bridge: "berth0", Subnet: netip.MustParsePrefix("10.88.0.0/16"), Gateway: netip.MustParseAddr("10.88.0.1")}
}

func TestValidation(t *testing.T) {
	good := testNetwork()
	bad := map[string]Network{
		"name":    {Name: "a b", Bridge: good.Bridge, Subnet: good.Subnet, Gateway: good.Gateway},
		"bridge":  {Name: "x", Bridge: "a-very-long-bridge-name", Subnet: good.Subnet, Gateway: good.Gateway},
		"subnet":  {Name: "x", Bridge: "b", Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: good.Gateway},
		"gateway": {Name: "x", Bridge: "b", Subnet: good.Subnet, Gateway: netip.MustParseAddr("10.99.0.1")},
	}
	for what, n := range bad {
		if err := ValidateNetwork(n); err == nil {
			t.Errorf("bad %s: ValidateNetwork(%+v) = nil", what, n)
		}
	}
	if err := ValidateNetwork(good); err != nil {
		t.Fatal(err)
	}
	ep := func(m ...portspec.Mapping) Endpoint {
		return Endpoint{ContainerID: "c1", Network: good, Addr: netip.MustParseAddr("10.88.0.2"), Ports: m}
	}
	badEndpoints := map[string]Endpoint{
		"protocol": ep(portspec.Mapping{HostPort: 1, ContainerPort: 1, Protocol: "sctp"}),
		"port":     ep(portspec.Mapping{HostPort: 0, ContainerPort: 1, Protocol: "tcp"}),
		"ipv6":     ep(portspec.Mapping{HostIP: netip.MustParseAddr("::1"), HostPort: 1, ContainerPort: 1, Protocol: "tcp"}),
		"addr":     {ContainerID: "c1", Network: good, Addr: netip.MustParseAddr("10.99.0.2")},
		"internal": {ContainerID: "c1", Network: Network{Name: "i", Bridge: "bi", Subnet: good.Subnet, Gateway: good.Gateway, Internal: true},
			Addr: netip.MustParseAddr("10.88.0.2"), Ports: []portspec.Mapping{{HostPort: 1, ContainerPort: 1, Protocol: "tcp"}}},
	}
	for what, e := range badEndpoints {
		if err := validatePublish(e); err == nil {
			t.Errorf("bad %s: validatePublish(%+v) = nil", what, e)
		}
	}
}

// TestRestoreInput pins down where each kind of mapping goes in iptables:
// loopback ones only in the OUTPUT-only chain, plus a raw-table guard.
func TestRestoreInput(t *testing.T) {
	e := Endpoint{ContainerID: "abc/123", Network: testNetwork(), Addr: netip.MustParseAddr("10.88.0.2"), Ports: []portspec.Mapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostIP: netip.MustParseAddr("192.0.2.1"), HostPort: 8082, ContainerPort: 80, Protocol: "tcp"},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}}
	got := restoreInput("-A", portRules(e))
	want := `*nat
-A BERTH-DNAT -p tcp -m tcp --dport 8080 -m comment --comment berth:abc123 -j DNAT --to-destination 10.88.0.2:80
-A BERTH-DNAT -d 192.0.2.1/32 -p tcp -m tcp --dport 8082 -m comment --comment berth:abc123 -j DNAT --to-destination 10.88.0.2:80
-A BERTH-DNAT-LOOPBACK -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment berth:abc123 -j DNAT --to-destination 10.88.0.2:53
COMMIT
*raw
-A BERTH-RAW -d 10.88.0.2/32 ! -i berth0 -p udp -m udp --dport 53 -m comment --comment berth:abc123 -j DROP
COMMIT
`
	if got != want {
		t.Errorf("restoreInput:\n%s\nwant:\n%s", got, want)
	}
}

// --- backends -------------------------------------------------------------------

// backendCase is one backend under test: the "iptables" of the machine's
// alternatives (nf_tables on Debian 12), iptables-legacy when installed, and nftables.
type backendCase struct {
	name string
	open func() (Backend, error)
	ipt  string // iptables binary of the flavour, "" for nftables
}

func backendCases() []backendCase {
	cases := []backendCase{{name: "iptables", open: func() (Backend, error) { return New("iptables") }, ipt: "iptables"}}
	if _, err := exec.LookPath("iptables-legacy"); err == nil {
		cases = append(cases, backendCase{name: "iptables-legacy", open: func() (Backend, error) { return newIPTables("iptables-legacy") }, ipt: "iptables-legacy"})
	}
	return append(cases, backendCase{name: "nftables", open: func() (Backend, error) { return New("nftables") }})
}

// forEachBackend runs fn as a subtest per backend, each with its own lab.
func forEachBackend(t *testing.T, fn func(t *testing.T, bc backendCase, l *lab, b Backend)) {
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			requireLab(t)
			if bc.ipt != "" {
				if _, err := exec.LookPath(bc.ipt); err != nil {
					testenv.Missing(t, "%s not installed", bc.ipt)
				}
			}
			b, err := bc.open()
			if err != nil {
				t.Fatal(err)
			}
			fn(t, bc, newLab(t), b)
		})
	}
}

// do runs a backend call in the host namespace.
func (l *lab) do(t testing.TB, what string, fn func() error) {
	t.Helper()
	l.host.must(t, what, fn)
}

// ruleset is the host's berth-relevant rules as text, without counters or
// comments-with-dates, so two snapshots can be compared.
func (l *lab) ruleset(t testing.TB, bc backendCase) string {
	t.Helper()
	if bc.ipt == "" {
		return l.host.output(t, "nft", "list", "ruleset")
	}
	out := l.host.output(t, bc.ipt+"-save")
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, counters.ReplaceAllString(line, ""))
	}
	return strings.Join(lines, "\n")
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// assertClean checks that no trace of berth is left in any ruleset of the host.
func (l *lab) assertClean(t testing.TB) {
	t.Helper()
	for _, save := range []string{"iptables-save", "iptables-legacy-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		if out := l.host.output(t, save); strings.Contains(out, "BERTH") || strings.Contains(out, "berth") {
			t.Errorf("%s still shows berth:\n%s", save, out)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := l.host.output(t, "nft", "list", "ruleset"); strings.Contains(out, "table ip berth") {
			t.Errorf("nft list ruleset still has berth's table:\n%s", out)
		}
	}
}

func endpoint(id string, n Network, addr netip.Addr, ports ...portspec.Mapping) Endpoint {
	return Endpoint{ContainerID: id, Network: n, Addr: addr, Ports: ports}
}

func mapping(hostIP string, hostPort, containerPort uint16, proto string) portspec.Mapping {
	m := portspec.Mapping{HostPort: hostPort, ContainerPort: containerPort, Protocol: proto}
	if hostIP != "" {
		m.HostIP = netip.MustParseAddr(hostIP)
	}
	return m
}

// --- the behaviour, on a real kernel -------------------------------------------

// TestPublishedPorts: outbound masquerade, and published TCP and UDP ports
// reachable from another host, from the host itself (127.0.0.1 and its own
// address), from a sibling container and from the container itself; then
// RemovePorts and TeardownNetwork leave nothing. For iptables, FORWARD's
// policy is DROP (as on a Docker host) and foreign rules exist: berth's own
// accept rules must be enough, and the foreign rules must survive.
func TestPublishedPorts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		if bc.ipt != "" {
			l.host.output(t, bc.ipt, "-P", "FORWARD", "DROP")
			l.host.output(t, bc.ipt, "-A", "FORWARD", "-s", "203.0.113.0/24", "-j", "ACCEPT")
			l.host.output(t, bc.ipt, "-t", "nat", "-A", "POSTROUTING", "-s", "203.0.113.0/24", "-j", "RETURN")
		}
		n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
		c1, a1 := l.addContainer(n, 2)
		c2, _ := l.addContainer(n, 3)
		serve(t, c1, "tcp", 80, "c1")
		serve(t, c1, "udp", 53, "c1")
		serve(t, l.other, "tcp", 9000, "other")

		e := endpoint("c1", n, a1,
			mapping("", 8080, 80, "tcp"),
			mapping("", 5353, 53, "udp"),
			mapping("192.0.2.1", 8082, 80, "tcp"))
		l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
		l.do(t, "AddPorts", func() error { return b.AddPorts(e) })

		// 1. Outbound: the other host sees the host's address.
		if seen := reach(t, c1, "tcp", "192.0.2.2:9000", "other"); seen != "192.0.2.1" {
			t.Errorf("outbound connection seen from %s, want the host's 192.0.2.1 (masquerade)", seen)
		}
		// 2a. From another host, at the host's address; the container sees the real client.
		if seen := reach(t, l.other, "tcp", "192.0.2.1:8080", "c1"); seen != "192.0.2.2" {
			t.Errorf("published port saw client %s, want 192.0.2.2", seen)
		}
		reach(t, l.other, "udp", "192.0.2.1:5353", "c1")
		// 2b. From the host itself, at 127.0.0.1 and at its own addresses.
		for _, addr := range []string{"127.0.0.1", "192.0.2.1", "10.88.0.1"} {
			reach(t, l.host, "tcp", addr+":8080", "c1")
			reach(t, l.host, "udp", addr+":5353", "c1")
		}
		// 2c. Hairpin: a sibling at the host's address is masqueraded to the gateway.
		if seen := reach(t, c2, "tcp", "192.0.2.1:8080", "c1"); seen != "10.88.0.1" {
			t.Errorf("hairpin connection seen from %s, want the gateway 10.88.0.1", seen)
		}
		reach(t, c2, "udp", "192.0.2.1:5353", "c1")
		// ...and the container itself, through its own published port.
		reach(t, c1, "tcp", "192.0.2.1:8080", "c1")
		// 3. A port published on one host address answers only there.
		reach(t, l.other, "tcp", "192.0.2.1:8082", "c1")
		blocked(t, l.host, "tcp", "127.0.0.1:8082")
		blocked(t, c2, "tcp", "10.88.0.1:8082")

		l.do(t, "RemovePorts", func() error { return b.RemovePorts(e) })
		blocked(t, l.other, "tcp", "192.0.2.1:8080")
		blocked(t, l.host, "udp", "127.0.0.1:5353")
		if rs := l.ruleset(t, bc); strings.Contains(rs, containerTag("c1")) {
			t.Errorf("rules of c1 left after RemovePorts:\n%s", rs)
		}
		l.do(t, "RemovePorts again", func() error { return b.RemovePorts(e) })
		// The network itself still works.
		reach(t, c1, "tcp", "192.0.2.2:9000", "other")

		l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
		l.do(t, "TeardownNetwork again", func() error { return b.TeardownNetwork(n) })
		l.assertClean(t)
		if bc.ipt != "" {
			rs := l.ruleset(t, bc)
			for _, want := range []string{":FORWARD DROP", "-A FORWARD -s 203.0.113.0/24 -j ACCEPT", "-A POSTROUTING -s 203.0.113.0/24 -j RETURN"} {
				if !strings.Contains(rs, want) {
					t.Errorf("foreign %q lost:\n%s", want, rs)
				}
			}
		}
	})
}

// TestLoopbackPublished: a port published on 127.0.0.1 answers the host
// only. The other host really sends to 127.0.0.1 through the host
// (route_localnet=1 and a 127.0.0.0/8 route in its own namespace); a port
// published on all addresses shows such packets do arrive and are DNAT'd in
// PREROUTING, so the loopback one failing is the rules' doing (moby#45610).
// It also routes the container subnet through the host: the container's
// loopback-published port must be dropped (raw), its other ports not.
func TestLoopbackPublished(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
		c1, a1 := l.addContainer(n, 2)
		serve(t, c1, "tcp", 80, "c1")
		serve(t, c1, "tcp", 81, "c1-81")
		serve(t, c1, "udp", 53, "c1")
		e := endpoint("c1", n, a1,
			mapping("127.0.0.1", 8081, 80, "tcp"),
			mapping("127.0.0.1", 5354, 53, "udp"),
			mapping("", 8080, 81, "tcp")) // control: published everywhere
		l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
		l.do(t, "AddPorts", func() error { return b.AddPorts(e) })

		reach(t, l.host, "tcp", "127.0.0.1:8081", "c1")
		reach(t, l.host, "udp", "127.0.0.1:5354", "c1")
		blocked(t, l.host, "tcp", "192.0.2.1:8081") // not published on that address

		l.other.sysctl(t, "net.ipv4.conf.all.route_localnet", "1")
		l.other.sysctl(t, "net.ipv4.conf.eth0.route_localnet", "1")
		l.other.addRoute(t, "127.0.0.0/8", l.hostAddr)
		reach(t, l.other, "tcp", "127.0.0.1:8080", "c1-81") // control
		blocked(t, l.other, "tcp", "127.0.0.1:8081")
		blocked(t, l.other, "udp", "127.0.0.1:5354")

		l.other.addRoute(t, "10.88.0.0/16", l.hostAddr)
		reach(t, l.other, "tcp", "10.88.0.2:81", "c1-81") // control: routed straight to the container
		blocked(t, l.other, "tcp", "10.88.0.2:80")
		blocked(t, l.other, "udp", "10.88.0.2:53")

		l.do(t, "RemovePorts", func() error { return b.RemovePorts(e) })
		blocked(t, l.host, "tcp", "127.0.0.1:8081")
		l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
		l.assertClean(t)
	})
}

// TestIsolation: two networks cannot reach each other; an internal network
// talks only within itself.
func TestIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		alpha := l.addNetwork("alpha", "br-a", "10.88.0.0/16", false)
		beta := l.addNetwork("beta", "br-b", "10.89.0.0/16", false)
		inner := l.addNetwork("inner", "br-i", "10.90.0.0/16", true)
		ca, _ := l.addContainer(alpha, 2)
		cb, _ := l.addContainer(beta, 2)
		ci1, ai1 := l.addContainer(inner, 2)
		ci2, _ := l.addContainer(inner, 3)
		for _, c := range []struct {
			ns   *nsT
			name string
		}{{ca, "ca"}, {cb, "cb"}, {ci1, "ci1"}} {
			serve(t, c.ns, "tcp", 80, c.name)
			serve(t, c.ns, "udp", 53, c.name)
		}
		serve(t, l.other, "tcp", 9000, "other")
		for _, n := range []Network{alpha, beta, inner} {
			l.do(t, "SetupNetwork "+n.Name, func() error { return b.SetupNetwork(n) })
		}

		blocked(t, cb, "tcp", "10.88.0.2:80")
		blocked(t, cb, "udp", "10.88.0.2:53")
		blocked(t, ca, "tcp", "10.89.0.2:80")
		reach(t, cb, "tcp", "192.0.2.2:9000", "other") // control: beta still goes out

		reach(t, ci2, "tcp", "10.90.0.2:80", "ci1")
		reach(t, ci2, "udp", "10.90.0.2:53", "ci1")
		blocked(t, ci1, "tcp", "192.0.2.2:9000")
		blocked(t, ca, "tcp", "10.90.0.2:80")
		blocked(t, ci1, "tcp", "10.88.0.2:80")
		l.other.addRoute(t, "10.90.0.0/16", l.hostAddr)
		l.other.addRoute(t, "10.88.0.0/16", l.hostAddr)
		blocked(t, l.other, "tcp", "10.90.0.2:80")
		reach(t, l.other, "tcp", "10.88.0.2:80", "ca") // control: the route works for a normal network

		err := l.host.run(func() error {
			return b.AddPorts(endpoint("ci1", inner, ai1, mapping("", 8080, 80, "tcp")))
		})
		if err == nil {
			t.Error("AddPorts on an internal network succeeded")
		}
		l.do(t, "RemovePorts on the internal network", func() error {
			return b.RemovePorts(endpoint("ci1", inner, ai1, mapping("", 8080, 80, "tcp")))
		})

		l.do(t, "TeardownNetwork beta", func() error { return b.TeardownNetwork(beta) })
		reach(t, ca, "tcp", "192.0.2.2:9000", "other")
		blocked(t, ci1, "tcp", "192.0.2.2:9000")
		l.do(t, "TeardownNetwork inner", func() error { return b.TeardownNetwork(inner) })
		reach(t, ca, "tcp", "192.0.2.2:9000", "other")
		l.do(t, "TeardownNetwork alpha", func() error { return b.TeardownNetwork(alpha) })
		l.assertClean(t)
	})
}

// TestSetupIdempotent: SetupNetwork twice, or concurrently from several
// goroutines (threads), leaves exactly the rules of one call; TeardownNetwork
// removes one network's rules only.
func TestSetupIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		alpha := l.addNetwork("alpha", "br-a", "10.88.0.0/16", false)
		beta := l.addNetwork("beta", "br-b", "10.89.0.0/16", true)

		l.do(t, "SetupNetwork alpha", func() error { return b.SetupNetwork(alpha) })
		once := l.ruleset(t, bc)
		l.do(t, "SetupNetwork alpha again", func() error { return b.SetupNetwork(alpha) })
		if twice := l.ruleset(t, bc); twice != once {
			t.Errorf("second SetupNetwork changed the rules:\n--- once\n%s\n--- twice\n%s", once, twice)
		}
		if bc.ipt != "" {
			rs := l.ruleset(t, bc)
			if got, want := strings.Count(rs, "berth alpha:"), len(networkRules(alpha)); got != want {
				t.Errorf("%d rules for alpha, want %d", got, want)
			}
			for _, j := range berthJumps {
				if got := strings.Count(rs, "-A "+j.chain+" "+strings.Join(j.spec, " ")); got != 1 {
					t.Errorf("jump %v appears %d times", j.spec, got)
				}
			}
		}

		l.do(t, "SetupNetwork beta", func() error { return b.SetupNetwork(beta) })
		both := l.ruleset(t, bc)
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			n := alpha
			if i%2 == 1 {
				n = beta
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- l.host.run(func() error { return b.SetupNetwork(n) })
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent SetupNetwork: %v", err)
			}
		}
		if again := l.ruleset(t, bc); again != both {
			t.Errorf("concurrent SetupNetwork changed the rules:\n--- before\n%s\n--- after\n%s", both, again)
		}

		l.do(t, "TeardownNetwork alpha", func() error { return b.TeardownNetwork(alpha) })
		rs := l.ruleset(t, bc)
		if strings.Contains(rs, "alpha") || strings.Contains(rs, "br-a") {
			t.Errorf("alpha's rules left after its teardown:\n%s", rs)
		}
		if !strings.Contains(rs, "br-b") {
			t.Errorf("beta's rules gone with alpha's:\n%s", rs)
		}
		l.do(t, "TeardownNetwork alpha again", func() error { return b.TeardownNetwork(alpha) })
		l.do(t, "TeardownNetwork beta", func() error { return b.TeardownNetwork(beta) })
		l.assertClean(t)
	})
}

// TestRemoveWhenNothingIsThere: RemovePorts and TeardownNetwork succeed on a
// namespace where berth never ran, and RemovePorts after the network is gone.
func TestRemoveWhenNothingIsThere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		n := testNetwork()
		e := endpoint("c1", n, netip.MustParseAddr("10.88.0.2"), mapping("", 8080, 80, "tcp"), mapping("127.0.0.1", 53, 53, "udp"))
		l.do(t, "RemovePorts", func() error { return b.RemovePorts(e) })
		l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
		l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
		l.do(t, "AddPorts", func() error { return b.AddPorts(e) })
		l.do(t, "TeardownNetwork with ports left", func() error { return b.TeardownNetwork(n) })
		l.do(t, "RemovePorts after teardown", func() error { return b.RemovePorts(e) })
		l.assertClean(t)
	})
}

// TestUDPConntrackFlush: a UDP flow to a host port that existed before the
// port was published is forgotten by AddPorts (so the client's next datagram
// is DNAT'd), and the published flow is forgotten by RemovePorts; flows to
// other ports are left alone.
func TestUDPConntrackFlush(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
		c1, a1 := l.addContainer(n, 2)
		serve(t, c1, "udp", 53, "c1")
		e := endpoint("c1", n, a1, mapping("", 5353, 53, "udp"))
		l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })

		// Nothing listens yet: these only leave conntrack entries behind.
		exchange(l.other, "udp", "192.0.2.1:5353", 40000, 200*time.Millisecond)
		exchange(l.other, "udp", "192.0.2.1:7777", 40001, 200*time.Millisecond)
		if !l.hasUDPFlow(t, 5353) || !l.hasUDPFlow(t, 7777) {
			t.Fatal("no conntrack entries for the test flows")
		}

		l.do(t, "AddPorts", func() error { return b.AddPorts(e) })
		if l.hasUDPFlow(t, 5353) {
			t.Error("AddPorts left the stale conntrack entry for port 5353")
		}
		if !l.hasUDPFlow(t, 7777) {
			t.Error("AddPorts removed the conntrack entry of port 7777")
		}
		// Same client port as the stale flow: now DNAT'd to the container.
		if server, _, err := exchange(l.other, "udp", "192.0.2.1:5353", 40000, reachTimeout); err != nil || server != "c1" {
			t.Errorf("udp from the stale flow's port after AddPorts: %q, %v", server, err)
		}
		if !l.hasUDPFlow(t, 5353) {
			t.Error("no conntrack entry for the published flow")
		}

		l.do(t, "RemovePorts", func() error { return b.RemovePorts(e) })
		if l.hasUDPFlow(t, 5353) {
			t.Error("RemovePorts left the conntrack entry for port 5353")
		}
		l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
		l.assertClean(t)
	})
}

// TestConntrackDeletion: both ways of deleting a port's UDP entries (the
// kernel's filtered flush, and the dump that older kernels need) delete
// that port's entries and keep the others'.
func TestConntrackDeletion(t *testing.T) {
	ways := []struct {
		name   string
		delete func(port uint16) error
	}{
		{"kernel filter", func(p uint16) error { return deleteConntrackByPort(unix.IPPROTO_UDP, p) }},
		{"dump", func(p uint16) error { return dumpAndDeleteUDPConntrack([]uint16{p}) }},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			requireLab(t)
			l := newLab(t)
			b, _ := New("nftables")
			n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
			l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
			exchange(l.other, "udp", "192.0.2.1:5353", 40000, 200*time.Millisecond)
			exchange(l.other, "udp", "192.0.2.1:7777", 40001, 200*time.Millisecond)
			if !l.hasUDPFlow(t, 5353) || !l.hasUDPFlow(t, 7777) {
				t.Fatal("no conntrack entries for the test flows")
			}
			err := l.host.run(func() error { return w.delete(5353) })
			if w.name == "kernel filter" && errors.Is(err, unix.EINVAL) {
				t.Skipf("this kernel (%s) does not filter conntrack deletions: flushUDPConntrack uses the dump, tested beside", kernelRelease(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.hasUDPFlow(t, 5353) {
				t.Error("the entry of port 5353 is still there")
			}
			if !l.hasUDPFlow(t, 7777) {
				t.Error("the entry of port 7777 was deleted too")
			}
			l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
			l.assertClean(t)
		})
	}
}

// TestConntrackHasEntries: the dump's shortcut reads the namespace's own
// entry count: none in a namespace without traffic, some after a flow.
func TestConntrackHasEntries(t *testing.T) {
	requireLab(t)
	quiet := newNS(t, "quiet")
	var has bool
	quiet.must(t, "count", func() error { has = conntrackHasEntries(); return nil })
	if has {
		t.Error("a namespace without traffic has conntrack entries")
	}
	l := newLab(t)
	b, _ := New("nftables")
	n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
	l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
	exchange(l.other, "udp", "192.0.2.1:7777", 40002, 200*time.Millisecond)
	l.host.must(t, "count", func() error { has = conntrackHasEntries(); return nil })
	if !has || !l.hasUDPFlow(t, 7777) {
		t.Errorf("after a UDP flow: conntrackHasEntries %v, flow listed %v", has, l.hasUDPFlow(t, 7777))
	}
	l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
	l.assertClean(t)
}

// kernelRelease is uname -r.
func kernelRelease(t testing.TB) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

// hasUDPFlow says whether the host's conntrack table has a UDP entry whose
// original destination port is port.
func (l *lab) hasUDPFlow(t testing.TB, port uint16) bool {
	t.Helper()
	var found bool
	l.host.must(t, "conntrack list", func() error {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			return err
		}
		for _, f := range flows {
			if f.Forward.Protocol == unix.IPPROTO_UDP && f.Forward.DstPort == port {
				found = true
			}
		}
		return nil
	})
	return found
}

// TestNFTablesPortConflict: with nftables a host port is a map key, so
// publishing it twice fails as a whole and the first mapping keeps working.
func TestNFTablesPortConflict(t *testing.T) {
	requireLab(t)
	l := newLab(t)
	b, _ := New("nftables")
	n := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
	c1, a1 := l.addContainer(n, 2)
	_, a2 := l.addContainer(n, 3)
	serve(t, c1, "tcp", 80, "c1")
	l.do(t, "SetupNetwork", func() error { return b.SetupNetwork(n) })
	l.do(t, "AddPorts c1", func() error { return b.AddPorts(endpoint("c1", n, a1, mapping("", 8080, 80, "tcp"))) })
	err := l.host.run(func() error {
		return b.AddPorts(endpoint("c2", n, a2, mapping("", 9090, 80, "tcp"), mapping("", 8080, 80, "tcp")))
	})
	if err == nil {
		t.Fatal("publishing host port 8080 twice succeeded")
	}
	reach(t, l.other, "tcp", "192.0.2.1:8080", "c1")
	if rs := l.host.output(t, "nft", "list", "ruleset"); strings.Contains(rs, "9090") {
		t.Errorf("half of the failed batch was applied:\n%s", rs)
	}
	l.do(t, "TeardownNetwork", func() error { return b.TeardownNetwork(n) })
	l.assertClean(t)
}
