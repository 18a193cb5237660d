package integration

import (
	"strconv"
	"strings"
	"testing"
)

// TestNetIsolation checks, for each firewall backend, that containers on
// two networks cannot reach each other, and that an --internal network
// has no way out and no way in.
func TestNetIsolation(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			h := newNetHost(t)
			t.Run("two networks", func(t *testing.T) { testTwoNetworks(t, h.withT(t), fw) })
			t.Run("internal", func(t *testing.T) { testInternal(t, h.withT(t), fw) })
		})
	}
}

// withT is the same hosts reporting on a subtest.
func (h *netHost) withT(t *testing.T) *netHost {
	return &netHost{env: h.env.with(t), t: t, sfx: h.sfx, ns: h.ns, other: h.other, hostVeth: h.hostVeth,
		otherVeth: h.otherVeth, netRoot: h.netRoot, environ: h.environ, resolvConf: h.resolvConf,
		helperPath: h.helper()}
}

func testTwoNetworks(t *testing.T, h *netHost, fw string) {
	a, b := "a"+h.sfx[:4], "b"+h.sfx[:4]
	h.createNetwork(a, "--firewall", fw)
	h.createNetwork(b, "--firewall", fw)
	toks := map[string]string{}
	web := func(network string) string {
		tok := token()
		id := h.start(netCtr{spec: []string{"--network", "bridge:" + network}, args: webServer, files: webFiles(tok)})
		toks[id] = tok
		return id
	}
	a1, a2, b1 := web(a), web(a), web(b)
	a1Addr, a2Addr, b1Addr := h.addrOf(a, a1), h.addrOf(a, a2), h.addrOf(b, b1)

	wantTCP(t, h.in(a1), a2Addr, 80, toks[a2], "two containers on one network")
	wantTCP(t, h.hostSide(), b1Addr, 80, toks[b1], "control: the host reaches the container on the second network")
	wantNoTCP(t, h.in(a1), b1Addr, 80, toks[b1], "a container of network "+a+" to one of network "+b)
	wantNoTCP(t, h.in(b1), a1Addr, 80, toks[a1], "a container of network "+b+" to one of network "+a)
	wantNoTCP(t, h.in(b1), a2Addr, 80, toks[a2], "a container of network "+b+" to another one of network "+a)
}

func testInternal(t *testing.T, h *netHost, fw string) {
	name := "i" + h.sfx[:4]
	n := h.createNetwork(name, "--internal", "--firewall", fw)
	if !n.Internal {
		t.Errorf("network inspect: expected internal true, got %+v", n)
	}
	tok1, tok2 := token(), token()
	i1 := h.start(netCtr{spec: []string{"--network", "bridge:" + name}, args: webServer, files: webFiles(tok1)})
	i2 := h.start(netCtr{spec: []string{"--network", "bridge:" + name}, args: webServer, files: webFiles(tok2)})
	i1Addr, i2Addr := h.addrOf(name, i1), h.addrOf(name, i2)

	peer := h.background(true, h.helper(), "tcp-peer", "9000")
	waitFileContains(t, peer.outPath, "listening")
	if r := h.hostSide().tcpGet(otherAddr, 9000, ""); !strings.Contains(r.stdout, "peer "+hostAddr) {
		t.Fatalf("control: expected the test host to reach the other host's TCP 9000, got %s", r)
	}

	if routes := h.mustExec(i1, "ip", "route").stdout; strings.Contains(routes, "default") {
		t.Errorf("a container on an internal network: expected no default route, got %q", routes)
	}
	wantTCP(t, h.in(i1), i2Addr, 80, tok2, "two containers on an internal network")
	wantTCP(t, h.in(i2), i1Addr, 80, tok1, "two containers on an internal network, the other way")
	if r := h.in(i1).tcpGet(otherAddr, 9000, ""); strings.Contains(r.stdout, "peer") {
		t.Errorf("a container on an internal network: expected no way to the other host, got %s", r)
	}

	// Even with a default route added by hand, nothing leaves the network:
	// no forwarding out and no masquerade.
	h.mustRun("nsenter", "--net=/proc/"+strconv.Itoa(h.pid(i1))+"/ns/net", "ip", "route", "add", "default", "via", n.Gateway)
	if r := h.in(i1).tcpGet(otherAddr, 9000, ""); strings.Contains(r.stdout, "peer") {
		t.Errorf("a container on an internal network with a default route via the gateway: expected the host not to forward it to the other host, got %s", r)
	}
	rules := h.rules()
	for _, l := range strings.Split(rules, "\n") {
		if strings.Contains(l, n.Subnet) && containsFold(l, "masquerade") {
			t.Errorf("internal network %s: expected no masquerade rule for its subnet %s, got %q", name, n.Subnet, l)
		}
	}

	// Nothing enters it either: the other host, routing the subnet via the
	// test host, cannot reach its containers.
	h.mustOther("ip", "route", "add", n.Subnet, "via", hostAddr)
	wantNoTCP(t, h.otherSide(), i1Addr, 80, tok1, "the other host, routing the internal subnet via the test host, to a container on it")

	// An internal network publishes no ports: create fails, leaving nothing.
	bundle := h.bundle(netCtr{spec: []string{"--network", "bridge:" + name, "--publish", "8085:80"}})
	id, r := h.tryStart(bundle)
	wantFail(t, r, "publishing a port on an internal network")
	if !containsFold(r.combined(), "internal") {
		t.Errorf("publishing a port on an internal network: expected the error to say the network is internal, got %s", r)
	}
	h.assertGone("after a failed publish on an internal network", id)
	h.assertNoNetLeftovers("after a failed publish on an internal network", id, "", 8085)
}
