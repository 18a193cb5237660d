package integration

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestNetBridge is the bridge network end to end, for each firewall
// backend: a web container publishing 8080:80 and 5353:53/udp, a sibling
// on the same network, and a container publishing on 127.0.0.1 only.
func TestNetBridge(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			testBridge(t, fw)
		})
	}
}

func testBridge(t *testing.T, fw string) {
	h := newNetHost(t)
	netName := "web" + h.sfx[:4]
	n := h.createNetwork(netName, "--firewall", fw)
	if n.Firewall != fw {
		t.Errorf("network inspect: expected firewall %q, got %q", fw, n.Firewall)
	}
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		t.Fatalf("network inspect: subnet %q: %v", n.Subnet, err)
	}

	tok := token()
	hostname := "web-" + h.sfx
	webBundle := h.bundle(netCtr{
		spec:  []string{"--network", "bridge:" + netName, "--publish", "8080:80", "--publish", "5353:53/udp", "--hostname", hostname},
		args:  webServer,
		files: webFiles(tok),
	})
	web, r := h.tryStart(webBundle)
	if r.code != 0 {
		t.Fatalf("run -d the web container: %s", r)
	}
	sib := h.start(netCtr{spec: []string{"--network", "bridge:" + netName}})
	webAddr, sibAddr := h.addrOf(netName, web), h.addrOf(netName, sib)

	t.Run("addressing", func(t *testing.T) {
		a, err := netip.ParseAddr(webAddr)
		if err != nil || !subnet.Contains(a) || webAddr == n.Gateway {
			t.Errorf("inspect: expected the web container's address %q to be a host address of %s other than the gateway %s", webAddr, n.Subnet, n.Gateway)
		}
		if webAddr == sibAddr {
			t.Errorf("inspect: expected two containers to get two addresses, both have %s", webAddr)
		}
		eth0 := h.mustExec(web, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
		wantContains(t, eth0, "inet "+webAddr+"/"+strconv.Itoa(subnet.Bits()), "eth0 in the container has its address with the subnet's length")
		routes := h.mustExec(web, "ip", "route").stdout
		wantContains(t, routes, "default via "+n.Gateway, "the container's default route goes via the bridge's gateway")
		br := h.mustRun("ip", "-o", "-4", "addr", "show", "dev", n.Bridge).stdout
		wantContains(t, br, "inet "+n.Gateway+"/", "the bridge has the gateway address")
	})

	t.Run("etc files", func(t *testing.T) {
		hosts := h.readRootfs(webBundle, "etc/hosts")
		wantContains(t, hosts, webAddr+"\t"+hostname, "/etc/hosts names the container with its address")
		wantContains(t, hosts, "127.0.0.1\tlocalhost", "/etc/hosts has localhost")
		if got := h.readRootfs(webBundle, "etc/hostname"); got != hostname+"\n" {
			t.Errorf("/etc/hostname: expected %q, got %q", hostname+"\n", got)
		}
		if got := strings.TrimSpace(h.mustExec(web, "hostname").stdout); got != hostname {
			t.Errorf("hostname in the container: expected %q, got %q", hostname, got)
		}
		got := h.mustExec(web, "cat", "/etc/resolv.conf").stdout
		if want := "nameserver 198.51.100.53\nsearch bt.test\n"; got != want {
			t.Errorf("/etc/resolv.conf in the container: expected the host's (BERTH_NET_RESOLV_CONF) %q, got %q", want, got)
		}
	})

	t.Run("published TCP", func(t *testing.T) {
		wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "from the other host at the host's address")
		wantTCP(t, h.hostSide(), "127.0.0.1", 8080, tok, "from the host at 127.0.0.1")
		wantTCP(t, h.hostSide(), hostAddr, 8080, tok, "from the host at its own address")
		wantTCP(t, h.in(sib), hostAddr, 8080, tok, "hairpin: from a sibling container at the host's address")
		wantTCP(t, h.in(web), hostAddr, 8080, tok, "hairpin: from the container itself at the host's address")
		wantTCP(t, h.in(sib), webAddr, 80, tok, "from a sibling at the container's address")
	})

	t.Run("published UDP", func(t *testing.T) {
		out := wantUDP(t, h.otherSide(), hostAddr, 5353, "from the other host at the host's address")
		// No proxy, no masquerade: the container sees the real client.
		wantContains(t, out, "from "+otherAddr+":", "the container sees the other host's own address as the UDP peer")
		wantUDP(t, h.hostSide(), "127.0.0.1", 5353, "from the host at 127.0.0.1")
		wantUDP(t, h.hostSide(), hostAddr, 5353, "from the host at its own address")
		wantUDP(t, h.in(sib), hostAddr, 5353, "hairpin: from a sibling container at the host's address")
	})

	t.Run("no userland proxy", func(t *testing.T) {
		ss := h.mustRun("ss", "-H", "-lntup").stdout
		for _, port := range []string{":8080", ":5353"} {
			for _, l := range strings.Split(ss, "\n") {
				if f := strings.Fields(l); len(f) >= 5 && strings.HasSuffix(f[4], port) {
					t.Errorf("expected no process in the test host to listen on %s (published ports are DNAT, no proxy), ss shows: %s", port, l)
				}
			}
		}
	})

	t.Run("masquerade", func(t *testing.T) {
		p := h.background(true, h.helper(), "tcp-peer", "9000")
		waitFileContains(t, p.outPath, "listening")
		r := h.exec(web, "busybox", "timeout", "6", "busybox", "nc", "-w", "2", otherAddr, "9000")
		wantContains(t, r.stdout, "peer "+hostAddr+":", "TCP from the container: the other host sees the test host's address as the source")
		u := h.background(true, h.helper(), "udp-echo", "9001")
		waitFileContains(t, u.outPath, "listening")
		out := wantUDP(t, h.in(sib), otherAddr, 9001, "UDP from a container to the other host")
		wantContains(t, out, "from "+hostAddr+":", "UDP from the container: the other host sees the test host's address as the source")
	})

	t.Run("loopback only", func(t *testing.T) {
		ltok := token()
		lo := h.start(netCtr{
			spec:  []string{"--network", "bridge:" + netName, "--publish", "127.0.0.1:8081:80"},
			args:  webServer,
			files: webFiles(ltok),
		})
		loAddr := h.addrOf(netName, lo)
		wantTCP(t, h.hostSide(), "127.0.0.1", 8081, ltok, "a port published on 127.0.0.1, from the host at 127.0.0.1")
		wantNoTCP(t, h.otherSide(), hostAddr, 8081, ltok, "a port published on 127.0.0.1, from the other host at the host's address")
		wantNoTCP(t, h.hostSide(), hostAddr, 8081, ltok, "a port published on 127.0.0.1, from the host at its other address")

		// The other host sends packets for 127.0.0.1 to the test host
		// (moby#45610): loopback traffic goes to table 100, whose default
		// route is the test host, and the local table is looked up after.
		h.mustOther("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf."+h.otherVeth+".route_localnet=1")
		h.mustOther("ip", "route", "add", "default", "via", hostAddr, "dev", h.otherVeth, "table", "100")
		h.mustOther("ip", "rule", "add", "pref", "10", "to", "127.0.0.1/32", "lookup", "100")
		h.mustOther("ip", "rule", "add", "pref", "100", "lookup", "local")
		h.mustOther("ip", "rule", "del", "pref", "0", "lookup", "local")
		// Control: a port published on every address answers this way,
		// so the route does bring such packets to the test host.
		wantTCP(t, h.otherSide(), "127.0.0.1", 8080, tok, "control: the other host reaches a port published on every address by sending to 127.0.0.1 via the test host")
		wantNoTCP(t, h.otherSide(), "127.0.0.1", 8081, ltok, "a port published on 127.0.0.1, from the other host sending to 127.0.0.1 via the test host")

		// The other host routes the container subnet via the test host.
		h.mustOther("ip", "route", "add", n.Subnet, "via", hostAddr)
		// Control: a container whose port is published on every address
		// can be reached this way (no firewall rule forbids it).
		wantTCP(t, h.otherSide(), webAddr, 80, tok, "control: the other host reaches the web container's address directly through its route")
		wantNoTCP(t, h.otherSide(), loAddr, 80, ltok, "the container of a port published on 127.0.0.1, from the other host straight to its address")
		wantTCP(t, h.in(sib), loAddr, 80, ltok, "the same container port from a sibling on its bridge")
	})

	t.Run("delete leaves nothing", func(t *testing.T) {
		// Control for the leftover checks: they see the rules while the
		// container runs.
		if rules := h.rules(); !strings.Contains(rules, "berth:"+web) || !addrRE(webAddr).MatchString(rules) {
			t.Errorf("while the web container runs: expected its firewall rules to be tagged berth:%s and name %s:\n%s", web, webAddr, rules)
		}
		for _, c := range []struct {
			id, addr string
			ports    []int
		}{{web, webAddr, []int{8080, 5353}}, {sib, sibAddr, nil}} {
			h.mustBerth("delete", "-f", c.id)
			h.assertGone("after delete", c.id)
			h.assertNoNetLeftovers("after delete", c.id, c.addr, c.ports...)
		}
		// The loopback container, if its subtest ran, is still attached.
		for _, c := range h.inspect(netName).Containers {
			h.mustBerth("delete", "-f", c.ID)
			h.assertNoNetLeftovers("after delete", c.ID, c.Address, 8081)
		}
		if v := h.vethsOnHost(); len(v) > 0 {
			t.Errorf("after deleting every container: expected no veth left in the test host, got %v", v)
		}
		if in := h.inspect(netName); len(in.Containers) != 0 {
			t.Errorf("after deleting every container: expected inspect to list none, got %+v", in.Containers)
		}
		h.mustBerth("network", "rm", netName)
		h.assertNetworkGone(n, true)
		if m := h.netRootMentions(netName); len(m) > 0 {
			t.Errorf("after network rm: expected no leases of %s left, got %v", netName, m)
		}
	})
}
