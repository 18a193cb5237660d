package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNetReload: for each firewall backend, containers publishing TCP and
// UDP ports on two networks, then the test host's firewall flushed under
// them. `berth network check` exits 1 naming what is missing, `berth
// network reload` restores it, and traffic flows again on every path; a
// second reload reports nothing and changes nothing, check exits 0, and
// the user's own rules outlive it all.
func TestNetReload(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			testReload(t, fw)
		})
	}
}

func testReload(t *testing.T, fw string) {
	h := newNetHost(t)
	netA, netB := "ra"+h.sfx[:4], "rb"+h.sfx[:4]
	h.createNetwork(netA, "--firewall", fw)
	h.createNetwork(netB, "--firewall", fw)
	tokA, tokB := token(), token()
	webA := h.start(netCtr{spec: []string{"--network", "bridge:" + netA, "--publish", "8080:80", "--publish", "5353:53/udp"}, args: webServer, files: webFiles(tokA)})
	sibA := h.start(netCtr{spec: []string{"--network", "bridge:" + netA}})
	webB := h.start(netCtr{spec: []string{"--network", "bridge:" + netB, "--publish", "8090:80"}, args: webServer, files: webFiles(tokB)})
	webBAddr := h.addrOf(netB, webB)
	peer := h.background(true, h.helper(), "tcp-peer", "9000")
	waitFileContains(t, peer.outPath, "listening")

	// Every path TestNetBridge checks, on both networks.
	everyPath := func(when string) {
		t.Helper()
		wantTCP(t, h.otherSide(), hostAddr, 8080, tokA, when+": from the other host at the host's address")
		wantTCP(t, h.otherSide(), hostAddr, 8090, tokB, when+": the second network's port, from the other host")
		wantTCP(t, h.hostSide(), "127.0.0.1", 8080, tokA, when+": from the host at 127.0.0.1")
		wantTCP(t, h.hostSide(), hostAddr, 8080, tokA, when+": from the host at its own address")
		wantTCP(t, h.in(sibA), hostAddr, 8080, tokA, when+": hairpin, from a sibling at the host's address")
		wantUDP(t, h.otherSide(), hostAddr, 5353, when+": UDP from the other host")
		r := h.exec(webA, "busybox", "timeout", "6", "busybox", "nc", "-w", "2", otherAddr, "9000")
		wantContains(t, r.stdout, "peer "+hostAddr+":", when+": TCP out of a container is masqueraded to the test host's address")
		// Isolation: a container reaches the other network only through a published port.
		wantNoTCP(t, h.in(sibA), webBAddr, 80, tokB, when+": from one network straight to a container of the other")
		if t.Failed() {
			t.Fatalf("%s: the networks do not work (rules:\n%s)", when, h.rules())
		}
	}
	everyPath("before the flush")
	r := h.berth("network", "check")
	wantCode(t, r, 0, "network check before the flush")
	wantContains(t, r.stdout, "all in place", "network check with nothing missing says so")

	// The flush, in the test host only.
	if fw == "nftables" {
		h.mustRun("nft", "flush", "ruleset")
	} else {
		for _, table := range []string{"nat", "filter"} {
			h.mustRun("iptables", "-t", table, "-F")
			h.mustRun("iptables", "-t", table, "-X")
		}
	}
	// Control: the flush broke the published port.
	wantNoTCP(t, h.otherSide(), hostAddr, 8080, tokA, "after the flush, from the other host")

	// The user's own rules, in a table or chain berth does not own (and,
	// for iptables, in the built-in chain berth jumps from).
	var userRules func() string
	if fw == "nftables" {
		h.mustRun("nft", "add", "table", "ip", "user"+h.sfx)
		h.mustRun("nft", "add", "chain", "ip", "user"+h.sfx, "in", "{ type filter hook input priority 0; }")
		h.mustRun("nft", "add", "rule", "ip", "user"+h.sfx, "in", "tcp", "dport", "9999", "accept", "comment", `"the user's"`)
		userRules = func() string { return h.mustRun("nft", "list", "table", "ip", "user"+h.sfx).stdout }
	} else {
		h.mustRun("iptables", "-N", "USER-X")
		h.mustRun("iptables", "-A", "USER-X", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
		h.mustRun("iptables", "-A", "FORWARD", "-s", "203.0.113.0/24", "-j", "USER-X")
		userRules = func() string { // the user's lines: berth's jump goes into FORWARD too
			var mine []string
			for _, l := range strings.Split(h.mustRun("iptables", "-S").stdout, "\n") {
				if strings.Contains(l, "USER-X") {
					mine = append(mine, l)
				}
			}
			return strings.Join(mine, "\n")
		}
	}
	userBefore := userRules()
	wantContains(t, userBefore, "9999", "control: the user's rule is listed")

	names := []string{"(network " + netA + ")", "(network " + netB + ")", "(container " + webA + ")", "(container " + webB + ")"}
	if fw == "nftables" {
		names = append(names, "table ip berth", "tcp-any { 8080 :", "udp-any { 5353 :", "tcp-any { 8090 :")
	} else {
		names = append(names, "-N BERTH-DNAT", "-N BERTH-FORWARD", "--dport 8080", "--dport 5353", "--dport 8090")
	}
	r = h.berth("network", "check")
	wantCode(t, r, 1, "network check after the flush")
	wantContains(t, r.stderr, "network reload", "network check's error points at the remedy")
	missing := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range missing {
		if !strings.HasPrefix(l, "missing: ") {
			t.Errorf("network check: expected every line to begin with \"missing: \", got %q", l)
		}
	}
	for _, n := range names {
		wantContains(t, r.stdout, n, "network check names what the flush removed")
	}

	r = h.mustBerth("network", "reload")
	restored := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range restored {
		if !strings.HasPrefix(l, "restored: ") {
			t.Errorf("network reload: expected every line to begin with \"restored: \", got %q", l)
		}
	}
	if len(restored) != len(missing) {
		t.Errorf("network reload: expected one line for each of the %d missing objects, got %d:\n%s", len(missing), len(restored), r.stdout)
	}
	for _, n := range names {
		wantContains(t, r.stdout, n, "network reload names what it restored")
	}
	everyPath("after the reload")

	before := h.ruleText()
	r = h.mustBerth("network", "reload")
	if r.stdout != "" {
		t.Errorf("a second network reload: expected no output (nothing missing), got %q", r.stdout)
	}
	if after := h.ruleText(); after != before {
		t.Errorf("a second network reload changed the rules:\n--- before\n%s\n--- after\n%s", before, after)
	}
	r = h.berth("network", "check")
	wantCode(t, r, 0, "network check after the reload")
	wantContains(t, r.stdout, "all in place", "network check after the reload")
	if got := userRules(); got != userBefore {
		t.Errorf("the user's rules changed under network reload:\n--- before\n%s\n--- after\n%s", userBefore, got)
	}
}

// TestNetReloadBridge: the bridge of a network without containers loses
// its address, then is deleted; each time check names it and reload makes
// it again, with route_localnet, and it carries traffic. A bridge deleted
// under a running container comes back with the container's veth on it.
// A network never used gets no bridge from reload. The bridge is the
// same for both firewalls: this runs with the default.
func TestNetReloadBridge(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	netName := "rbr" + h.sfx[:4]
	n := h.createNetwork(netName)
	unused := "run" + h.sfx[:4]
	u := h.createNetwork(unused)
	id := h.start(netCtr{spec: []string{"--network", "bridge:" + netName}})
	h.mustBerth("delete", "-f", id)
	gw := n.Gateway + "/" + strings.Split(n.Subnet, "/")[1]

	r := h.berth("network", "check")
	wantCode(t, r, 0, "network check with the bridge in place and no container")

	h.mustRun("ip", "addr", "del", gw, "dev", n.Bridge)
	r = h.berth("network", "check")
	wantCode(t, r, 1, "network check without the bridge's address")
	wantContains(t, r.stdout, "missing: ip addr add "+gw+" dev "+n.Bridge, "network check names the address")
	r = h.mustBerth("network", "reload")
	if want := "restored: ip addr add " + gw + " dev " + n.Bridge + " (network " + netName + ")\n"; r.stdout != want {
		t.Errorf("network reload: expected exactly %q, got %q", want, r.stdout)
	}
	wantContains(t, h.mustRun("ip", "-o", "-4", "addr", "show", "dev", n.Bridge).stdout, "inet "+gw+" ", "the bridge has its address again")

	h.mustRun("ip", "link", "del", n.Bridge)
	r = h.berth("network", "check")
	wantCode(t, r, 1, "network check without the bridge")
	wantContains(t, r.stdout, "missing: ip link add "+n.Bridge+" type bridge", "network check names the bridge")
	wantContains(t, r.stdout, "route_localnet", "network check names the bridge's route_localnet")
	r = h.mustBerth("network", "reload")
	wantContains(t, r.stdout, "restored: ip link add "+n.Bridge+" type bridge", "network reload names the bridge")
	assertBridgeMade(t, h, n)
	if r := h.berth("network", "check"); r.code != 0 {
		t.Errorf("network check after the reload: expected exit 0, got %s", r)
	}

	// The bridge made by reload carries a new container's traffic...
	tok := token()
	web := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", "8080:80"}, args: webServer, files: webFiles(tok)})
	wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "a container on the bridge reload made, from the other host")

	// ...and one deleted under it comes back with the container's veth on it.
	h.mustRun("ip", "link", "del", n.Bridge)
	wantNoTCP(t, h.otherSide(), hostAddr, 8080, tok, "control: without its bridge the container is cut off")
	r = h.berth("network", "check")
	wantCode(t, r, 1, "network check without the bridge of a running container")
	wantContains(t, r.stdout, "missing: ip link set "+hostVethOf(web)+" master "+n.Bridge, "network check names the container's veth")
	r = h.mustBerth("network", "reload")
	wantContains(t, r.stdout, "restored: bridge link set dev "+hostVethOf(web)+" hairpin on", "network reload turns hairpin on again")
	assertBridgeMade(t, h, n)
	wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "after reload, from the other host")
	wantTCP(t, h.in(web), hostAddr, 8080, tok, "after reload, hairpin from the container itself")

	if r := h.run("ip", "link", "show", u.Bridge); r.code == 0 {
		t.Errorf("network reload made the bridge of network %s, which no container ever used: %s", unused, r)
	}
	r = h.berth("network", "reload", "extra")
	wantFail(t, r, "network reload with an argument")
	wantContains(t, r.stderr, `"extra"`, "the error names the unexpected argument")
}

// assertBridgeMade checks that n's bridge exists, is up, has the gateway
// address and route_localnet=1.
func assertBridgeMade(t *testing.T, h *netHost, n netInspection) {
	t.Helper()
	gw := n.Gateway + "/" + strings.Split(n.Subnet, "/")[1]
	link := h.run("ip", "-o", "link", "show", "dev", n.Bridge)
	if link.code != 0 || !regexp.MustCompile(`[<,]UP[,>]`).MatchString(link.stdout) {
		t.Errorf("after network reload: expected bridge %s to exist and be up, got %s", n.Bridge, link)
	}
	wantContains(t, h.run("ip", "-o", "-4", "addr", "show", "dev", n.Bridge).stdout, "inet "+gw+" ", "the bridge made again has its address")
	if got := strings.TrimSpace(h.run("cat", "/proc/sys/net/ipv4/conf/"+n.Bridge+"/route_localnet").stdout); got != "1" {
		t.Errorf("after network reload: expected route_localnet=1 on %s, got %q", n.Bridge, got)
	}
}

// ruleText is rules() without iptables-save's packet counters and dated
// comments: what two snapshots of the same rules have in common.
func (h *netHost) ruleText() string {
	h.t.Helper()
	var kept []string
	for _, l := range strings.Split(h.rules(), "\n") {
		if !strings.HasPrefix(l, "#") {
			kept = append(kept, counters.ReplaceAllString(l, ""))
		}
	}
	return strings.Join(kept, "\n")
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// TestNetReloadCrash: network reload SIGKILLed after its first restore of
// a link, after its first restore of firewall rules and, for iptables,
// halfway through a network's rules. The next check still finds what is
// missing, the next reload restores it, and traffic flows; the cleanups'
// delete -f leaves nothing.
func TestNetReloadCrash(t *testing.T) {
	t.Parallel()
	requireEnv(t)
	requireNetTools(t)
	dir, err := os.MkdirTemp("", "bt-reload-crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	buildCrashBinaries(t, dir)
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			h := newNetHost(t)
			h.shared.bin = filepath.Join(dir, "berth") // every berth run of this test, cleanups included
			netName := "rc" + h.sfx[:4]
			n := h.createNetwork(netName, "--firewall", fw)
			gw := n.Gateway + "/" + strings.Split(n.Subnet, "/")[1]
			tok := token()
			h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", "8080:80"}, args: webServer, files: webFiles(tok)})
			wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "before any damage, from the other host")
			points := []string{"net.reload.restored", "fw.reconcile.restored"}
			if fw == "iptables" {
				points = append(points, "fw.iptables.network-rule.3")
			}
			for _, p := range points {
				t.Run(p, func(t *testing.T) {
					h := h.withT(t)
					h.mustRun("ip", "addr", "del", gw, "dev", n.Bridge)
					if fw == "nftables" {
						h.mustRun("nft", "flush", "ruleset")
					} else {
						for _, table := range []string{"nat", "filter"} {
							h.mustRun("iptables", "-t", table, "-F")
							h.mustRun("iptables", "-t", table, "-X")
						}
					}
					r := h.berthEnv([]string{crashEnv + "=" + p}, "network", "reload")
					if r.code != -1 {
						t.Errorf("network reload with %s=%s: expected it to be killed by SIGKILL, got %s", crashEnv, p, r)
					}
					wantCode(t, h.berth("network", "check"), 1, "network check after the killed reload")
					h.mustBerth("network", "reload")
					wantCode(t, h.berth("network", "check"), 0, "network check after the next reload")
					wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "after the next reload, from the other host")
				})
			}
		})
	}
}
