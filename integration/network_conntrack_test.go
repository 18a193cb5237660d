package integration

import (
	"strconv"
	"strings"
	"testing"
)

// TestNetUDPConntrackFlush checks that publishing and unpublishing a UDP
// port flush the conntrack entries of that port. UDP has no connection to
// end, so a client that keeps its source port (DNS resolvers, syslog)
// keeps matching an entry made before the port was published, or one that
// still points to a deleted container, and never sees the new DNAT.
//
// The checks are behavioural (a client on a fixed source port gets its
// answer, or not) and, where the kernel shows it, on the test host's
// /proc/net/nf_conntrack; the conntrack(8) tool is not needed.
func TestNetUDPConntrackFlush(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			testConntrackFlush(t, fw)
		})
	}
}

// conntrackLines are the entries of UDP flows from the other host's
// source port sport to the host's port dport.
func conntrackLines(table string, sport, dport string) []string {
	var out []string
	for _, l := range strings.Split(table, "\n") {
		if strings.Contains(l, " udp ") && strings.Contains(l, "src="+otherAddr+" dst="+hostAddr+" sport="+sport+" dport="+dport+" ") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func testConntrackFlush(t *testing.T, fw string) {
	h := newNetHost(t)
	netName := "ct" + h.sfx[:4]
	h.createNetwork(netName, "--firewall", fw)
	// A first container makes the network's bridge and rules, and with
	// them connection tracking in the test host.
	h.start(netCtr{spec: []string{"--network", "bridge:" + netName}})

	const sport = "40053"
	send := func(msg string, tries string) result {
		return h.otherSide().udpSend(hostAddr, 5353, msg, "-sport", sport, "-tries", tries)
	}
	// Before the port is published: nobody answers, but the datagram
	// leaves a conntrack entry (unreplied) for this source port.
	if r := send("before", "1"); r.code == 0 {
		t.Fatalf("before publishing: expected no answer on UDP %s:5353, got %s", hostAddr, r)
	}
	// A flow to a port nobody publishes: the flushes must leave it alone
	// (a flush that deleted more than the port's entries would cut other
	// containers' and the host's flows).
	const otherSport, otherPort = "40077", 7777
	if r := h.otherSide().udpSend(hostAddr, otherPort, "bystander", "-sport", otherSport, "-tries", "1"); r.code == 0 {
		t.Fatalf("expected no answer on UDP %s:%d, got %s", hostAddr, otherPort, r)
	}
	table, haveTable := h.conntrack()
	if !haveTable {
		t.Log("the kernel shows no /proc/net/nf_conntrack: checking the flush by behaviour only")
	} else if got := conntrackLines(table, sport, "5353"); len(got) == 0 {
		t.Errorf("before publishing: expected a conntrack entry for %s:%s -> %s:5353 after the first datagram, table:\n%s", otherAddr, sport, hostAddr, table)
	}

	// Publishing must flush it, or the same client is never DNAT'd.
	id := h.start(netCtr{
		spec: []string{"--network", "bridge:" + netName, "--publish", "5353:53/udp"},
		args: []string{"/bt-helper", "udp-echo", "53"},
	})
	addr := h.addrOf(netName, id)
	r := send("after-publish", "100") // the echo server may be slow to bind
	if r.code != 0 || !strings.Contains(r.stdout, "echo after-publish from "+otherAddr+":"+sport) {
		t.Errorf("after publishing 5353/udp: expected the client on source port %s, which talked to the port before, to reach the container (the old conntrack entry must be flushed), got %s", sport, r)
	}
	if haveTable {
		table, _ = h.conntrack()
		lines := conntrackLines(table, sport, "5353")
		if len(lines) != 1 || !strings.Contains(lines[0], "src="+addr+" ") {
			t.Errorf("after publishing: expected one conntrack entry for source port %s, DNAT'd to %s, got %q", sport, addr, lines)
		}
		if got := conntrackLines(table, otherSport, strconv.Itoa(otherPort)); len(got) != 1 {
			t.Errorf("after publishing 5353/udp: expected the entry of the flow to port %d to stay, got %q; table:\n%s", otherPort, got, table)
		}
	}

	// Unpublishing must flush the entry that points to the container: a
	// host program now on the port gets the same client's datagrams.
	h.mustBerth("delete", "-f", id)
	if haveTable {
		table, _ = h.conntrack()
		for _, l := range conntrackLines(table, sport, "5353") {
			if strings.Contains(l, "src="+addr+" ") {
				t.Errorf("after delete: expected no conntrack entry DNAT'd to the deleted container %s, got %q", addr, l)
			}
		}
	}
	p := h.background(false, h.helper(), "udp-echo", "5353")
	waitFileContains(t, p.outPath, "listening")
	r = send("after-delete", "10")
	if r.code != 0 || !strings.Contains(r.stdout, "echo after-delete from "+otherAddr+":"+sport) {
		t.Errorf("after delete: expected the same client (source port %s) to reach the host program now on UDP 5353 (the DNAT'd conntrack entry must be flushed), got %s", sport, r)
	}
}
