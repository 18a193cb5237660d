package integration

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lsNames are the network names `berth network ls` prints.
func (h *netHost) lsNames() []string {
	h.t.Helper()
	r := h.mustBerth("network", "ls")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NAME") {
		h.t.Errorf("network ls: expected a header line first, got %q", r.stdout)
		return nil
	}
	var names []string
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func netListHas(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestNetCLI checks `berth network create|ls|inspect|rm|prune`.
func TestNetCLI(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)

	// As Docker's, ls always shows the default network, and inspect shows
	// it before its first container; neither writes anything.
	t.Run("default network on a fresh root", func(t *testing.T) {
		h := h.withT(t)
		before := treeSnapshot(t, h.netRoot)
		r := h.mustBerth("network", "ls")
		if names := h.lsNames(); len(names) != 1 || names[0] != "bridge" {
			t.Errorf("network ls on a fresh root: expected the default network bridge alone, got %v", names)
		}
		wantFields(t, r.stdout, "bridge berth0 10.77.0.0/16 10.77.0.1 nftables false", "network ls on a fresh root: the default network's row")
		in := h.inspect("bridge")
		if in.Name != "bridge" || in.Bridge != "berth0" || in.Firewall != "nftables" || in.Subnet != "10.77.0.0/16" || in.Gateway != "10.77.0.1" || len(in.Containers) != 0 {
			t.Errorf("network inspect bridge, never used: expected the default network (berth0, 10.77.0.0/16 via 10.77.0.1, nftables, no container), got %+v", in)
		}
		if after := treeSnapshot(t, h.netRoot); after != before {
			t.Errorf("network ls and inspect on a fresh root wrote to BERTH_NET_ROOT:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if out := h.mustRun("ip", "-o", "link", "show", "type", "bridge").stdout; out != "" {
			t.Errorf("network ls and inspect on a fresh root made a bridge:\n%s", out)
		}
	})

	t.Run("create, ls, inspect, rm", func(t *testing.T) {
		h := h.withT(t)
		name := "n1" + h.sfx[:4]
		r := h.mustBerth("network", "create", name)
		wantContains(t, r.stdout, name, "network create prints the name")
		if !netListHas(h.lsNames(), name) {
			t.Errorf("network ls: expected %s listed", name)
		}
		in := h.inspect(name)
		subnet, err := netip.ParsePrefix(in.Subnet)
		if in.Name != name || in.Bridge != "bt-"+name || in.Firewall != "nftables" || err != nil || in.Gateway != subnet.Addr().Next().String() || in.Internal {
			t.Errorf("network inspect %s: expected bridge bt-%s, a subnet with its first address as gateway, nftables, not internal; got %+v", name, name, in)
		}
		if r := h.mustBerth("network", "inspect", "bridge"); strings.Contains(r.stdout, in.Subnet) {
			t.Errorf("network create %s: expected a subnet apart from the default network's, got %s, default: %s", name, in.Subnet, r.stdout)
		}
		if r := h.berth("network", "create", name); r.code == 0 || !strings.Contains(r.combined(), name) {
			t.Errorf("network create of an existing name: expected a failure naming %s, got %s", name, r)
		}

		id := h.start(netCtr{spec: []string{"--network", "bridge:" + name, "--publish", "8090:80", "--hostname", "cli-" + h.sfx}})
		in = h.inspect(name)
		if len(in.Containers) != 1 {
			t.Fatalf("network inspect %s: expected one container, got %+v", name, in.Containers)
		}
		c := in.Containers[0]
		if a, err := netip.ParseAddr(c.Address); c.ID != id || c.Hostname != "cli-"+h.sfx || err != nil || !subnet.Contains(a) || c.HostVeth != hostVethOf(id) || len(c.Ports) != 1 {
			t.Errorf("network inspect %s: expected container %s with hostname cli-%s, an address in %s, host veth %s and one port, got %+v", name, id, h.sfx, subnet, hostVethOf(id), c)
		}
		r = h.berth("network", "rm", name)
		wantFail(t, r, "network rm while a container is attached")
		wantContains(t, r.combined(), id, "network rm while attached names the container")
		if !netListHas(h.lsNames(), name) {
			t.Errorf("after a refused network rm: expected %s still listed", name)
		}
		if r := h.run("ip", "link", "show", in.Bridge); r.code != 0 {
			t.Errorf("after a refused network rm: expected bridge %s to stay, got %s", in.Bridge, r)
		}
		h.mustBerth("delete", "-f", id)
		r = h.mustBerth("network", "rm", name)
		wantContains(t, r.stdout, name, "network rm prints the name")
		if netListHas(h.lsNames(), name) {
			t.Errorf("after network rm: expected %s not listed", name)
		}
		h.assertNetworkGone(in, true)
		if r := h.berth("network", "inspect", name); r.code == 0 || !strings.Contains(r.combined(), name) {
			t.Errorf("network inspect of a removed network: expected a failure naming it, got %s", r)
		}
		if r := h.berth("network", "rm", name); r.code == 0 || !strings.Contains(r.combined(), name) {
			t.Errorf("network rm of a missing network: expected a failure naming it, got %s", r)
		}
	})

	// The documented syntax, through berth's front end, with every flag.
	for _, tc := range []struct{ name, order string }{{"f" + h.sfx[:4], "before"}, {"a" + h.sfx[:4], "after"}} {
		t.Run("create with flags "+tc.order+" the name", func(t *testing.T) {
			h := h.withT(t)
			third := map[string]string{"before": "240", "after": "241"}[tc.order]
			flags := []string{"--subnet", "10." + third + ".0.0/24", "--gateway", "10." + third + ".0.254", "--bridge", "btx" + tc.name, "--mtu", "1400", "--internal", "--firewall", "iptables"}
			args := append(append([]string{"network", "create"}, flags...), tc.name)
			if tc.order == "after" {
				args = append([]string{"network", "create", tc.name}, flags...)
			}
			r := h.berth(args...)
			if r.code != 0 {
				t.Fatalf("berth %s: expected exit 0, got %s", strings.Join(args, " "), r)
			}
			in := h.inspect(tc.name)
			if in.Subnet != "10."+third+".0.0/24" || in.Gateway != "10."+third+".0.254" || in.Bridge != "btx"+tc.name || in.MTU != 1400 || !in.Internal || in.Firewall != "iptables" {
				t.Errorf("network inspect %s: expected every flag of `berth %s` applied, got %+v", tc.name, strings.Join(args, " "), in)
			}
			id := h.start(netCtr{spec: []string{"--network", "bridge:" + tc.name}})
			wantContains(t, h.mustExec(id, "ip", "-o", "link", "show", "eth0").stdout, "mtu 1400", "--mtu: the container's eth0")
			h.mustBerth("delete", "-f", id)
			h.mustBerth("network", "rm", tc.name)
		})
	}

	// The README's way to give the default network another subnet.
	t.Run("default network with a subnet of one's choosing", func(t *testing.T) {
		h := h.withT(t)
		h.mustBerth("network", "create", "bridge", "--subnet", "10.66.0.0/24")
		if in := h.inspect("bridge"); in.Subnet != "10.66.0.0/24" || in.Gateway != "10.66.0.1" || in.Bridge != "berth0" {
			t.Errorf("network create bridge --subnet 10.66.0.0/24: expected the default network on berth0 with 10.66.0.0/24 via 10.66.0.1, got %+v", in)
		}
		h.mustBerth("network", "rm", "bridge")
		if in := h.inspect("bridge"); in.Subnet == "10.66.0.0/24" {
			t.Errorf("after network rm bridge: expected the default network shown with a default subnet again, got %+v", in)
		}
	})

	t.Run("prune", func(t *testing.T) {
		h := h.withT(t)
		idle, used := "p1"+h.sfx[:4], "p2"+h.sfx[:4]
		h.mustBerth("network", "create", idle)
		h.mustBerth("network", "create", used)
		id := h.start(netCtr{spec: []string{"--network", "bridge:" + used}})
		r := h.mustBerth("network", "prune")
		wantContains(t, r.stdout, idle, "network prune prints what it removed")
		if strings.Contains(r.stdout, used) {
			t.Errorf("network prune: expected the network with a container, %s, to stay, got %q", used, r.stdout)
		}
		names := h.lsNames()
		if netListHas(names, idle) || !netListHas(names, used) {
			t.Errorf("after network prune: expected %s gone and %s kept, ls shows %v", idle, used, names)
		}
		h.mustBerth("delete", "-f", id)
		wantContains(t, h.mustBerth("network", "prune").stdout, used, "network prune after the last container is gone")
		if names := h.lsNames(); len(names) != 1 || names[0] != "bridge" {
			t.Errorf("after pruning everything: expected the default network alone, ls shows %v", names)
		}
		if rules := h.rules(); strings.Contains(rules, "BERTH") || strings.Contains(rules, "table ip berth") {
			t.Errorf("after pruning every network: expected no BERTH chain and no berth table:\n%s", rules)
		}
	})
}

// TestNetDefaultNetwork checks that the default network, defined on first
// use, takes a subnet that no host route overlaps (here a route over its
// usual 10.77.0.0/16, as another tool's network would have), and that
// inspect showed beforehand the subnet it then took.
func TestNetDefaultNetwork(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	h.mustRun("ip", "route", "add", "blackhole", "10.77.0.0/16")
	shown := h.inspect("bridge")
	tok := token()
	id := h.start(netCtr{spec: []string{"--publish", "8080:80"}, args: webServer, files: webFiles(tok)})
	in := h.inspect("bridge")
	subnet, err := netip.ParsePrefix(in.Subnet)
	if err != nil || subnet.Overlaps(netip.MustParsePrefix("10.77.0.0/16")) {
		t.Errorf("default network with a host route for 10.77.0.0/16: expected another subnet, got %q", in.Subnet)
	}
	if shown.Subnet != in.Subnet || shown.Gateway != in.Gateway {
		t.Errorf("inspect bridge before its first container showed %s via %s; the container's setup defined %s via %s", shown.Subnet, shown.Gateway, in.Subnet, in.Gateway)
	}
	if len(in.Containers) != 1 || in.Containers[0].ID != id {
		t.Fatalf("inspect bridge: expected %s attached (--publish alone implies the default network), got %+v", id, in.Containers)
	}
	if a, err := netip.ParseAddr(in.Containers[0].Address); err != nil || !subnet.Contains(a) {
		t.Errorf("expected the container's address in %s, got %q", in.Subnet, in.Containers[0].Address)
	}
	wantContains(t, h.mustRun("ip", "-o", "-4", "addr", "show", "dev", "berth0").stdout, "inet "+in.Gateway+"/", "the default bridge berth0 has the gateway address")
	wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "a published port of a container on the default network")
}

// TestNetBadInput checks that bad network input fails with an error naming
// the bad value and leaves nothing half-made.
func TestNetBadInput(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)

	t.Run("container options", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			spec  []string
			value string // the error must name it
		}{
			{"malformed publish", []string{"--publish", "80a:80"}, "80a:80"},
			{"too many fields", []string{"--publish", "1:2:3:4"}, "1:2:3:4"},
			{"host port out of range", []string{"--publish", "70000:80"}, "70000"},
			{"container port zero", []string{"--publish", "8080:0"}, "8080:0"},
			{"range length mismatch", []string{"--publish", "8000-8002:80-81"}, "8000-8002:80-81"},
			{"unknown protocol", []string{"--publish", "8080:80/sctp"}, "sctp"},
			{"same port twice", []string{"--publish", "8080:80", "--publish", "8080:81"}, "8080"},
			{"unknown mode", []string{"--network", "bogus"}, "bogus"},
			{"network that does not exist", []string{"--network", "bridge:nosuchnet"}, "nosuchnet"},
			{"publish with --network host", []string{"--network", "host", "--publish", "8080:80"}, "host"},
			{"publish with --network none", []string{"--network", "none", "--publish", "8080:80"}, "none"},
			{"hostname that would forge /etc/hosts lines", []string{"--network", "none", "--hostname", "a b"}, "a b"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := h.withT(t)
				dir := h.mkdir("bundle")
				if r := h.berth(append([]string{"spec", "-b", dir}, tc.spec...)...); r.code != 0 {
					t.Logf("refused by berth spec: %s", strings.TrimSpace(r.combined()))
					wantContains(t, r.combined(), tc.value, "berth spec refuses "+strings.Join(tc.spec, " ")+" and names the value")
					if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
						t.Errorf("berth spec %v failed but wrote config.json", tc.spec)
					}
					return
				}
				// berth spec took it: create must refuse it.
				id, r := h.tryStart(h.bundle(netCtr{spec: tc.spec}))
				wantFail(t, r, "run -d with "+strings.Join(tc.spec, " "))
				wantContains(t, r.combined(), tc.value, "the error of run -d with "+strings.Join(tc.spec, " ")+" names the value")
				t.Logf("berth spec took it; run -d refused it: %s", strings.TrimSpace(r.stderr))
				h.assertGone("after a refused create", id)
				h.assertNoNetLeftovers("after a refused create", id, "")
				if v := h.vethsOnHost(); len(v) != 0 {
					t.Errorf("after a refused create: expected no veth, got %v", v)
				}
			})
		}
	})

	t.Run("network create", func(t *testing.T) {
		h := h.withT(t)
		base := "base" + h.sfx[:4]
		h.createNetwork(base, "--subnet", "10.230.0.0/16")
		h.mustRun("ip", "route", "add", "blackhole", "10.231.0.0/16")
		for _, tc := range []struct {
			name  string
			flags []string
			value string
		}{
			{"subnet overlapping a network", []string{"--subnet", "10.230.5.0/24"}, "10.230.5.0/24"},
			{"subnet overlapping a host route", []string{"--subnet", "10.231.1.0/24"}, "10.231.1.0/24"},
			{"subnet not a CIDR", []string{"--subnet", "10.234.0.0/33"}, "10.234.0.0/33"},
			{"subnet with host bits", []string{"--subnet", "10.235.0.1/24"}, "10.235.0.1/24"},
			{"gateway outside the subnet", []string{"--subnet", "10.232.0.0/24", "--gateway", "10.233.0.1"}, "10.233.0.1"},
			{"bridge name over 15 bytes", []string{"--bridge", "abcdefghijklmnop"}, "abcdefghijklmnop"},
			{"unknown firewall", []string{"--firewall", "pf"}, "pf"},
			{"mtu out of range", []string{"--mtu", "20"}, "20"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := h.withT(t)
				name := "bad" + h.sfx[:4]
				r := h.berth(append(append([]string{"network", "create"}, tc.flags...), name)...)
				wantFail(t, r, "network create "+strings.Join(tc.flags, " "))
				wantContains(t, r.combined(), tc.value, "the error of network create "+strings.Join(tc.flags, " ")+" names the value")
				if netListHas(h.lsNames(), name) {
					t.Errorf("after a refused network create: expected %s not listed", name)
				}
				if _, err := os.Stat(filepath.Join(h.netRoot, "networks", name+".json")); err == nil {
					t.Errorf("after a refused network create: expected no definition of %s", name)
				}
			})
		}
		for _, bad := range []string{"bad/name", base} {
			r := h.berth("network", "create", bad)
			wantFail(t, r, "network create "+bad)
			wantContains(t, r.combined(), bad, "the error of network create names the bad or taken name")
		}
		if names := h.lsNames(); len(names) != 2 || names[0] != base || names[1] != "bridge" {
			t.Errorf("after the refused creates: expected only %s and the default network bridge, ls shows %v", base, names)
		}
		if bridges := h.mustRun("ip", "-o", "link", "show", "type", "bridge").stdout; bridges != "" {
			t.Errorf("after the refused creates: expected no bridge, got:\n%s", bridges)
		}
	})
}

// treeSnapshot describes the files under root, their modes and contents,
// or says root does not exist: two equal snapshots mean nothing was
// written in between.
func treeSnapshot(t *testing.T, root string) string {
	t.Helper()
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return "(" + root + " does not exist)"
	}
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", p, info.Mode())
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	return b.String()
}

// wantFields checks that some line of out has exactly the
// whitespace-separated fields of want.
func wantFields(t *testing.T, out, want, what string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			return
		}
	}
	t.Errorf("%s: expected a line %q, got:\n%s", what, want, out)
}
