package network

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/internal/names"
)

// The fuzz targets below feed berth-net's user-supplied names and options
// (network create's flags, --network, the container id of the state on
// stdin) to the functions that check them, and hold what they accept to
// the properties the rest of berth-net relies on: every path built from a
// name stays in its directory, and the firewall accepts every network that
// network create accepts. Seeds are in testdata/fuzz/<target>/; those named
// regress-* are inputs that once broke a property.

// fuzzExisting and fuzzRoutes are the world FuzzNewNetwork checks against.
var (
	fuzzExisting = []Network{{Name: "taken", Bridge: "bt-taken", Subnet: netip.MustParsePrefix("10.77.0.0/16"),
		Gateway: netip.MustParseAddr("10.77.0.1"), Firewall: "nftables"}}
	fuzzRoutes = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
)

// inDir reports whether path names an entry directly inside dir.
func inDir(dir, path string) bool {
	return filepath.Dir(path) == filepath.Clean(dir) && filepath.Base(path) != ".." && filepath.Base(path) != "."
}

func FuzzNewNetwork(f *testing.F) {
	f.Add("front", "", "", "", 0, false, "")
	f.Add("back", "10.90.0.0/24", "10.90.0.254", "br-back", 1500, true, "iptables")
	f.Fuzz(func(t *testing.T, name, subnet, gateway, bridge string, mtu int, internal bool, fw string) {
		o := CreateOptions{Name: name, Subnet: subnet, Gateway: gateway, Bridge: bridge, MTU: mtu, Internal: internal, Firewall: fw}
		n, err := newNetwork(o, fuzzExisting, fuzzRoutes)
		if err != nil {
			return
		}
		l := Layout{Root: "/berth-net-root"}
		switch {
		case n.Name != name:
			t.Fatalf("%+v: created network is named %q", o, n.Name)
		case names.NetworkName(n.Name) != nil:
			t.Fatalf("%+v: accepted a name that names.NetworkName refuses: %v", o, names.NetworkName(n.Name))
		case !inDir(l.networksDir(), l.networkFile(n.Name)):
			t.Fatalf("%+v: definition %s is not in %s", o, l.networkFile(n.Name), l.networksDir())
		case !inDir(filepath.Join(l.Root, "ipam"), l.ipamDir(n.Name)):
			t.Fatalf("%+v: leases %s are not in %s/ipam", o, l.ipamDir(n.Name), l.Root)
		case n.Bridge == "" || len(n.Bridge) > names.MaxInterfaceName || names.InterfaceName("bridge", n.Bridge) != nil:
			t.Fatalf("%+v: bridge name %q is not an interface name", o, n.Bridge)
		case bridge != "" && n.Bridge != bridge:
			t.Fatalf("%+v: asked for bridge %q, got %q", o, bridge, n.Bridge)
		case n.Bridge == fuzzExisting[0].Bridge:
			t.Fatalf("%+v: took the bridge of network %q", o, fuzzExisting[0].Name)
		case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet != n.Subnet.Masked() || n.Subnet.Bits() > 30:
			t.Fatalf("%+v: subnet %v is not a masked IPv4 prefix of /30 or more", o, n.Subnet)
		case n.Subnet.Overlaps(fuzzExisting[0].Subnet) || n.Subnet.Overlaps(fuzzRoutes[0]):
			t.Fatalf("%+v: subnet %v overlaps a network or a host route", o, n.Subnet)
		case !n.Subnet.Contains(n.Gateway) || n.Gateway == n.Subnet.Addr() || n.Gateway == broadcast(n.Subnet):
			t.Fatalf("%+v: gateway %v is not a host address of %v", o, n.Gateway, n.Subnet)
		case n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535):
			t.Fatalf("%+v: MTU %d", o, n.MTU)
		case n.Firewall != "iptables" && n.Firewall != "nftables":
			t.Fatalf("%+v: firewall %q", o, n.Firewall)
		case n.Internal != internal:
			t.Fatalf("%+v: internal %v", o, n.Internal)
		}
		if err := firewall.ValidateNetwork(n.firewallNetwork()); err != nil {
			t.Fatalf("%+v: network create accepts what the firewall refuses: %v", o, err)
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"bridge", "bridge:front", "host", "none", "container:abc", "bridge:", "container:../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--network") {
				t.Fatalf("ParseMode(%q): error %q does not name the flag", s, err)
			}
			return
		}
		l := Layout{Root: "/berth-net-root"}
		switch m.Kind {
		case "host", "none":
			if m.Name != "" || s != m.Kind {
				t.Fatalf("ParseMode(%q) = %+v", s, m)
			}
		case "bridge":
			if err := names.NetworkName(m.Name); err != nil {
				t.Fatalf("ParseMode(%q) = %+v: a network name names.NetworkName refuses: %v", s, m, err)
			}
			if !inDir(l.networksDir(), l.networkFile(m.Name)) {
				t.Fatalf("ParseMode(%q): network file %s escapes %s", s, l.networkFile(m.Name), l.networksDir())
			}
		case "container":
			if err := names.ContainerID(m.Name); err != nil {
				t.Fatalf("ParseMode(%q) = %+v: a container id names.ContainerID refuses: %v", s, m, err)
			}
			if !inDir(l.recordsDir(), l.recordFile(m.Name)) {
				t.Fatalf("ParseMode(%q): record %s escapes %s", s, l.recordFile(m.Name), l.recordsDir())
			}
		default:
			t.Fatalf("ParseMode(%q): unknown kind %q", s, m.Kind)
		}
	})
}

// FuzzContainerID checks that every container id berth-net takes from the
// state on its stdin names a record inside the records directory, and
// that Records lists that record: gc and network rm must see every
// container that has one.
func FuzzContainerID(f *testing.F) {
	for _, s := range []string{"abc", "my_ctr-1.2+x", "../x", "a\x00b", ".x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if err := names.ContainerID(id); err != nil {
			return
		}
		l := Layout{Root: t.TempDir()}
		if !inDir(l.recordsDir(), l.recordFile(id)) {
			t.Fatalf("id %q: record %s escapes %s", id, l.recordFile(id), l.recordsDir())
		}
		if err := l.saveRecord(&Record{ID: id, Mode: "none"}); err != nil {
			t.Fatalf("id %q: saveRecord: %v", id, err)
		}
		recs, err := l.Records()
		if err != nil {
			t.Fatalf("id %q: Records: %v", id, err)
		}
		if len(recs) != 1 || recs[0].ID != id {
			t.Fatalf("id %q: Records lists %+v, not the record just saved", id, recs)
		}
	})
}

// TestNameRegressions pins the inputs the fuzz targets and the hostile
// input tests found.
func TestNameRegressions(t *testing.T) {
	// Network names the firewall refuses (first character not a letter or
	// digit) were accepted, and failed only at the first container; a
	// leading '.' also hid the network from ls and from the overlap check.
	for _, name := range []string{"_x", "-x", ".hidden", ".."} {
		if _, err := newNetwork(CreateOptions{Name: name}, nil, nil); err == nil {
			t.Errorf("newNetwork(%q) = nil error, want the name refused", name)
		}
		if _, err := ParseMode("bridge:" + name); err == nil {
			t.Errorf("ParseMode(bridge:%q) = nil error, want the name refused", name)
		}
	}
	// runc (and berth) accept '+' in container ids; berth-net refused it,
	// so such a container could not get a network.
	if err := names.ContainerID("a+b"); err != nil {
		t.Errorf("names.ContainerID(a+b) = %v, want nil", err)
	}
	if _, err := ParseMode("container:a+b"); err != nil {
		t.Errorf("ParseMode(container:a+b) = %v, want nil", err)
	}
	// A record of a container whose id begins with '.' was skipped by
	// Records as if hidden: gc and network rm did not see the container.
	l := Layout{Root: t.TempDir()}
	for _, id := range []string{".x", "y"} {
		if err := l.saveRecord(&Record{ID: id, Mode: "bridge", Network: "n"}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := l.Records()
	if err != nil || len(recs) != 2 || recs[0].ID != ".x" {
		t.Errorf("Records() = %+v, %v: want the records of .x and y", recs, err)
	}
	// berth takes ids of up to 255 bytes, berth-net took 1024, and
	// saved a record as ID.json, which has no room for ids over 250 bytes:
	// such a container failed in its network hook ("file name too long").
	for _, id := range []string{strings.Repeat("a", 250), strings.Repeat("b", 251), strings.Repeat("c", 255)} {
		if err := l.saveRecord(&Record{ID: id, Mode: "none"}); err != nil {
			t.Errorf("saveRecord of a %d-byte id: %v", len(id), err)
		}
		if r, err := l.LoadRecord(id); err != nil || r.ID != id {
			t.Errorf("LoadRecord of a %d-byte id = %+v, %v", len(id), r, err)
		}
	}
	if recs, err := l.Records(); err != nil || len(recs) != 5 {
		t.Errorf("Records() = %d records, %v: want 5 (.x, y and the three long ids)", len(recs), err)
	}
	for _, id := range []string{strings.Repeat("d", 256), strings.Repeat("d", 1024)} {
		if err := names.ContainerID(id); err == nil || !strings.Contains(err.Error(), "longer than 255 bytes") {
			t.Errorf("a %d-byte container id: %v, want it refused as berth refuses it", len(id), err)
		}
	}
	// network rm built paths from the name unchecked: ../../x read
	// ROOT/../x.json and removed the directory ROOT/../x.
	if err := l.RemoveNetwork("../../x"); err == nil || !strings.Contains(err.Error(), "network name") {
		t.Errorf("RemoveNetwork(../../x) = %v, want the name refused", err)
	}
}
