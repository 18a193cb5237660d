package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Two berth-net roots (BERTH_NET_ROOT) in one network namespace, records
// that cannot be read, and bridges that are not berth's: what gc, setup and
// network create may and may not touch.

// withRoot is a second view of the test host: the same namespaces, the
// same runtime root, another BERTH_NET_ROOT (under the test's temp dir).
func (h *netHost) withRoot(t *testing.T, name string) *netHost {
	h2 := h.withT(t)
	h2.netRoot = filepath.Join(h.base, name)
	h2.environ = append([]string{"BERTH_NET_ROOT=" + h2.netRoot}, h.environ[1:]...)
	return h2
}

// hasLink reports whether the test host has an interface called name.
func (h *netHost) hasLink(name string) bool {
	h.t.Helper()
	return h.run("ip", "link", "show", "dev", name).code == 0
}

// linkAndAddrs is what ip shows of interface name: flags, alias and
// addresses.
func (h *netHost) linkAndAddrs(name string) string {
	h.t.Helper()
	return h.mustRun("ip", "-o", "link", "show", "dev", name).stdout + h.mustRun("ip", "-o", "addr", "show", "dev", name).stdout
}

// TestNetGCTwoRoots runs, for each firewall backend, a container with a
// published port under each of two roots in one namespace, then gc under
// each root: neither root's gc may take the other's veth, and both
// containers stay reachable through their DNAT from the other host.
func TestNetGCTwoRoots(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			h1 := newNetHost(t)
			h2 := h1.withRoot(t, "net-root2")
			net1, net2 := "r1"+h1.sfx[:4], "r2"+h1.sfx[:4]
			tok1, tok2 := token(), token()
			h1.createNetwork(net1, "--firewall", fw)
			c1 := h1.start(netCtr{spec: []string{"--network", "bridge:" + net1, "--publish", "7181:80"}, args: webServer, files: webFiles(tok1)})
			// Defined once root 1's bridge exists: its subnet avoids that
			// bridge's route.
			h2.createNetwork(net2, "--firewall", fw)
			c2 := h2.start(netCtr{spec: []string{"--network", "bridge:" + net2, "--publish", "7182:80"}, args: webServer, files: webFiles(tok2)})
			wantTCP(t, h1.otherSide(), hostAddr, 7181, tok1, "control: root 1's container before gc")
			wantTCP(t, h1.otherSide(), hostAddr, 7182, tok2, "control: root 2's container before gc")

			for _, g := range []struct {
				name string
				h    *netHost
			}{{"root 2", h2}, {"root 1", h1}, {"root 2 again", h2}} {
				rep := g.h.gc()
				if len(rep.Links)+len(rep.Containers)+len(rep.Leases)+len(rep.Ports) != 0 {
					t.Errorf("gc in %s: expected nothing to release (both containers run), got %+v", g.name, rep)
				}
				for _, c := range []string{c1, c2} {
					if !h1.hasLink(hostVethOf(c)) {
						t.Errorf("after gc in %s: container %s lost its veth %s:\n%s", g.name, c, hostVethOf(c), h1.links())
					}
				}
				wantTCPNow(t, h1.otherSide(), hostAddr, 7181, tok1, "root 1's container after gc in "+g.name)
				wantTCPNow(t, h1.otherSide(), hostAddr, 7182, tok2, "root 2's container after gc in "+g.name)
			}
		})
	}
}

// TestNetRootsRefuseSharedNames checks that a second root is refused, with
// an error naming the bridge, the other root and the gateway it wanted,
// when it would use a bridge or a network name that another root's live
// network has in the namespace, and that the first root's container keeps
// working and the second root keeps nothing of the refused container.
func TestNetRootsRefuseSharedNames(t *testing.T) {
	t.Parallel()
	h1 := newNetHost(t)
	h2 := h1.withRoot(t, "net-root2")
	// Root 1 on the default network (bridge berth0) and on a network of
	// its own.
	tok := token()
	c1 := h1.start(netCtr{spec: []string{"--publish", "7183:80"}, args: webServer, files: webFiles(tok)})
	mine := "own" + h1.sfx[:4]
	h1.createNetwork(mine, "--subnet", "10.241.7.0/24")
	// Root 2 defines a network on the same subnet while it is still free.
	overlap := "ov" + h1.sfx[:4]
	h2.createNetwork(overlap, "--subnet", "10.241.7.0/24")
	h1.start(netCtr{spec: []string{"--network", "bridge:" + mine}})
	wantTCP(t, h1.otherSide(), hostAddr, 7183, tok, "control: root 1's container on the default network")
	gateway := h1.inspect("bridge").Gateway

	// Root 2's default network would be bridge berth0 too.
	id, r := h2.tryStart(h2.bundle(netCtr{spec: []string{"--publish", "7184:80"}}))
	if r.code == 0 {
		t.Errorf("root 2 on the default network: expected its container to be refused (berth0 is root 1's), got %s", r)
	}
	for _, want := range []string{"berth0", h1.netRoot} {
		if !strings.Contains(r.combined(), want) {
			t.Errorf("root 2 on the default network: expected the error to name %q, got %s", want, r)
		}
	}
	if m := h2.netRootMentions(id); len(m) > 0 {
		t.Errorf("root 2's refused container: expected no record, lease or port left, got %v", m)
	}
	if h1.hasLink(hostVethOf(id)) {
		t.Errorf("root 2's refused container: expected no veth left, got %s", hostVethOf(id))
	}
	if addrs := h1.mustRun("ip", "-4", "-o", "addr", "show", "dev", "berth0").stdout; strings.Count(addrs, "inet ") != 1 || !strings.Contains(addrs, gateway+"/") {
		t.Errorf("after root 2 was refused: expected berth0 to carry root 1's gateway %s only, got %s", gateway, addrs)
	}

	// Root 2 may not define a network of root 1's name either (the
	// firewall names its chains after the network), even on another bridge.
	r = h2.berth("network", "create", mine, "--bridge", "bo"+h1.sfx[:8])
	if r.code == 0 || !strings.Contains(r.combined(), mine) || !strings.Contains(r.combined(), h1.netRoot) {
		t.Errorf("root 2 creating network %s, which root 1 has: expected a refusal naming the network and root 1, got %s", mine, r)
	}

	// Root 1's network now has its bridge, and with it the subnet's route.
	id, r = h2.tryStart(h2.bundle(netCtr{spec: []string{"--network", "bridge:" + overlap}}))
	if r.code == 0 || !strings.Contains(r.combined(), "10.241.7.0/24") {
		t.Errorf("root 2 on a network whose subnet root 1's bridge has taken since: expected a refusal naming the subnet, got %s", r)
	}
	if m := h2.netRootMentions(id); len(m) > 0 {
		t.Errorf("root 2's refused container: expected no record, lease or port left, got %v", m)
	}
	if r := h2.run("ip", "link", "show", "dev", h2.inspect(overlap).Bridge); r.code == 0 {
		t.Errorf("root 2's refused network: expected no bridge made, got %s", r)
	}

	// Each root keeps its own port registry: a host port root 1 publishes
	// is refused to root 2 by the firewall, and the refused setup's undoing
	// must not unpublish root 1's port.
	other := "pt" + h1.sfx[:4]
	h2.createNetwork(other)
	id, r = h2.tryStart(h2.bundle(netCtr{spec: []string{"--network", "bridge:" + other, "--publish", "7183:80"}}))
	if r.code == 0 {
		t.Errorf("root 2 publishing root 1's host port 7183: expected a refusal, got %s", r)
	}
	if m := h2.netRootMentions(id); len(m) > 0 {
		t.Errorf("root 2's refused container: expected no record, lease or port left, got %v", m)
	}

	wantTCPNow(t, h1.otherSide(), hostAddr, 7183, tok, "root 1's container after root 2 was refused")
	if !h1.hasLink(hostVethOf(c1)) {
		t.Errorf("root 1's container lost its veth %s", hostVethOf(c1))
	}
}

// TestNetBridgeNotOurs checks that a bridge berth did not make (here by
// hand, with another address) is refused by network create and, when it
// appears after the network was defined, by the first container's setup,
// with an error naming the bridge, its address and the gateway wanted; the
// bridge is left as it was and nothing of the container is left.
func TestNetBridgeNotOurs(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	bridge := "bx" + h.sfx[:8]
	h.mustRun("ip", "link", "add", bridge, "type", "bridge")
	h.mustRun("ip", "addr", "add", "10.251.7.1/24", "dev", bridge)
	before := h.linkAndAddrs(bridge)

	r := h.berth("network", "create", "n1"+h.sfx[:4], "--bridge", bridge, "--subnet", "10.252.7.0/24")
	if r.code == 0 {
		t.Errorf("network create on the foreign bridge %s: expected a refusal, got %s", bridge, r)
	}
	for _, want := range []string{bridge, "10.251.7.1/24", "10.252.7.1"} {
		if !strings.Contains(r.combined(), want) {
			t.Errorf("network create on the foreign bridge: expected the error to name %q, got %s", want, r)
		}
	}

	// A network defined while the name was free, then the bridge appears.
	late := "bl" + h.sfx[:8]
	name := "n2" + h.sfx[:4]
	h.createNetwork(name, "--bridge", late, "--subnet", "10.253.7.0/24")
	h.mustRun("ip", "link", "add", late, "type", "bridge")
	h.mustRun("ip", "addr", "add", "10.254.7.1/24", "dev", late)
	lateBefore := h.linkAndAddrs(late)
	id, r := h.tryStart(h.bundle(netCtr{spec: []string{"--network", "bridge:" + name, "--publish", "7185:80"}}))
	if r.code == 0 {
		t.Errorf("a container on network %s whose bridge %s is not berth's: expected setup to refuse it, got %s", name, late, r)
	}
	for _, want := range []string{late, "10.254.7.1/24", "10.253.7.1"} {
		if !strings.Contains(r.combined(), want) {
			t.Errorf("setup on the foreign bridge: expected the error to name %q, got %s", want, r)
		}
	}
	if m := h.netRootMentions(id); len(m) > 0 {
		t.Errorf("the refused container: expected no record, lease or port left, got %v", m)
	}
	if h.hasLink(hostVethOf(id)) {
		t.Errorf("the refused container: expected no veth left, got %s", hostVethOf(id))
	}
	if rules := h.rules(); strings.Contains(rules, late) || strings.Contains(rules, "10.253.7.0/24") {
		t.Errorf("the refused network: expected no firewall rule for it, got:\n%s", rules)
	}
	for b, was := range map[string]string{bridge: before, late: lateBefore} {
		if now := h.linkAndAddrs(b); now != was {
			t.Errorf("the foreign bridge %s changed:\nbefore %s\nafter  %s", b, was, now)
		}
	}
	// network rm forgets the network but leaves the bridge it does not own.
	h.mustBerth("network", "rm", name)
	if !h.hasLink(late) {
		t.Errorf("network rm %s: expected the foreign bridge %s to stay", name, late)
	}
}

// TestNetGCUnreadableRecords puts records that cannot be read or are not
// records beside live containers' and checks that gc then fails, naming the
// file, and releases nothing: not the live containers' veths, not even the
// leftovers of a container that is gone; once the record is readable
// again, gc releases exactly the leftovers.
func TestNetGCUnreadableRecords(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	netName := "ur" + h.sfx[:4]
	h.createNetwork(netName)
	dir := filepath.Join(h.netRoot, "containers")
	record := func(id string) string { return filepath.Join(dir, id+".json") }

	toks := map[string]string{}
	web := func(port string) string {
		tok := token()
		id := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", port + ":80"}, args: webServer, files: webFiles(tok)})
		toks[id] = tok
		return id
	}
	a, b := web("7186"), web("7187")
	// A container deleted without its teardown: gc's work, once it may.
	lost := h.start(netCtr{spec: []string{"--network", "bridge:" + netName}, mods: []func(*specs.Spec){withoutPoststop}})
	h.mustBerth("delete", "-f", lost)
	wantTCP(t, h.otherSide(), hostAddr, 7186, toks[a], "control: container a before gc")
	wantTCP(t, h.otherSide(), hostAddr, 7187, toks[b], "control: container b before gc")

	aRecord, err := os.ReadFile(record(a))
	if err != nil {
		t.Fatal(err)
	}
	bRecord, err := os.ReadFile(record(b))
	if err != nil {
		t.Fatal(err)
	}
	unreadable := record("zz-unreadable")
	restore := func() {
		if err := os.WriteFile(record(a), aRecord, 0o600); err != nil {
			t.Error(err)
		}
		if err := os.RemoveAll(unreadable); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore) // so that the containers' own cleanup can tear them down

	for _, tc := range []struct {
		name    string
		corrupt func() error
		file    string
	}{
		{"garbage JSON", func() error { return os.WriteFile(record(a), []byte("{\"id\": garbage"), 0o600) }, record(a)},
		{"JSON that is not a record", func() error { return os.WriteFile(record(a), []byte("{}"), 0o600) }, record(a)},
		{"another container's record", func() error { return os.WriteFile(record(a), bRecord, 0o600) }, record(a)},
		{"a record that cannot be read", func() error { return os.Mkdir(unreadable, 0o700) }, unreadable},
	} {
		if err := tc.corrupt(); err != nil {
			t.Fatal(err)
		}
		r := h.berth("gc")
		if r.code == 0 {
			t.Errorf("%s: expected gc to fail, got %s", tc.name, r)
		}
		if !strings.Contains(r.combined(), tc.file) {
			t.Errorf("%s: expected gc's error to name %s, got %s", tc.name, tc.file, r)
		}
		for _, c := range []string{a, b} {
			if !h.hasLink(hostVethOf(c)) {
				t.Errorf("%s: gc took the veth %s of the running container %s:\n%s", tc.name, hostVethOf(c), c, h.links())
			}
		}
		if _, err := os.Stat(record(lost)); err != nil {
			t.Errorf("%s: expected gc to release nothing, but the record of the gone container %s went: %v", tc.name, lost, err)
		}
		wantTCPNow(t, h.otherSide(), hostAddr, 7186, toks[a], tc.name+": container a after the failed gc")
		wantTCPNow(t, h.otherSide(), hostAddr, 7187, toks[b], tc.name+": container b after the failed gc")
		restore()
	}

	rep := h.gc()
	if len(rep.Containers) != 1 || rep.Containers[0] != lost || len(rep.Links) != 0 {
		t.Errorf("gc with every record readable: expected it to release %s only, got %+v", lost, rep)
	}
	wantTCPNow(t, h.otherSide(), hostAddr, 7186, toks[a], "container a after gc")
	wantTCPNow(t, h.otherSide(), hostAddr, 7187, toks[b], "container b after gc")
}

// TestNetGCSweepsOnlyItsVeths leaves veths named as berth names them
// (bt + 11 hex digits) and named by no record in the test host: one marked
// with this root, one with another root's mark, one unmarked. gc deletes
// only the first; the others are not provably its own.
func TestNetGCSweepsOnlyItsVeths(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	veths := map[string]string{ // name: alias
		"bt" + h.sfx + "aaa": "berth-net root=" + h.netRoot,
		"bt" + h.sfx + "bbb": "berth-net root=" + h.netRoot + "-other",
		"bt" + h.sfx + "ccc": "",
	}
	for name, alias := range veths {
		h.mustRun("ip", "link", "add", name, "type", "veth", "peer", "name", "p"+name[2:])
		if alias != "" {
			h.mustRun("ip", "link", "set", name, "alias", alias)
		}
	}
	rep := h.gc()
	if want := "bt" + h.sfx + "aaa"; len(rep.Links) != 1 || rep.Links[0] != want {
		t.Errorf("gc: expected it to delete %s (marked with its root) only, got %+v", want, rep)
	}
	for name, alias := range veths {
		if present := h.hasLink(name); present != (name != "bt"+h.sfx+"aaa") {
			t.Errorf("after gc: veth %s (alias %q) present=%v, expected only the root's own to be gone", name, alias, present)
		}
	}
}
