package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/netlinksafe"
)

// The network every bridge container joins unless told otherwise, as
// Docker's "bridge". It exists without being created: its definition is
// written the first time it is used.
const (
	DefaultNetwork = "bridge"
	DefaultBridge  = "berth0"
)

// DefaultFirewall is the backend of networks created without --firewall:
// nftables programs the kernel over netlink in one batch and publishes a
// port by adding a map element, so a setup costs no exec at all.
const DefaultFirewall = "nftables"

// maxIfName is IFNAMSIZ-1: Linux interface names are at most 15 bytes.
const maxIfName = 15

// Network is a named bridge network, as `berth network inspect` shows it.
type Network struct {
	Name     string       `json:"name"`
	Bridge   string       `json:"bridge"`
	Subnet   netip.Prefix `json:"subnet"`
	Gateway  netip.Addr   `json:"gateway"`
	MTU      int          `json:"mtu,omitempty"`
	Internal bool         `json:"internal,omitempty"`
	Firewall string       `json:"firewall"`
	Created  time.Time    `json:"created"`
}

func (n *Network) firewallNetwork() firewall.Network {
	return firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal}
}

// CreateOptions are `berth network create`'s flags; empty values are chosen.
type CreateOptions struct {
	Name     string
	Subnet   string
	Gateway  string
	Bridge   string
	MTU      int
	Internal bool
	Firewall string
}

// candidateSubnets are tried in order for networks created without
// --subnet, skipping any that overlap a host route or another network.
var candidateSubnets = func() []netip.Prefix {
	var out []netip.Prefix
	for i := 88; i < 100; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)))
	}
	for i := 18; i < 32; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("172.%d.0.0/16", i)))
	}
	for i := 100; i < 200; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", i)))
	}
	return out
}()

// CreateNetwork validates o and records the network. Its bridge and rules
// are made when its first container joins.
func (l Layout) CreateNetwork(o CreateOptions) (*Network, error) {
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return l.createNetworkLocked(o)
}

func (l Layout) createNetworkLocked(o CreateOptions) (*Network, error) {
	if err := checkNetworkName(o.Name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.networkFile(o.Name)); err == nil {
		return nil, fmt.Errorf("network %q already exists", o.Name)
	}
	existing, err := l.listNetworks()
	if err != nil {
		return nil, err
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	n, err := newNetwork(o, existing, routes)
	if err != nil {
		return nil, err
	}
	// Refused now rather than at the first container: a bridge or a
	// network name that another root (or tool) has in this namespace.
	if err := l.checkBridgeName(n); err != nil {
		return nil, err
	}
	if err := l.checkNetworkNameFree(n); err != nil {
		return nil, err
	}
	n.Created = time.Now().UTC()
	if err := l.saveNetwork(n); err != nil {
		return nil, err
	}
	return n, nil
}

// newNetwork checks o against the networks that exist and the host's
// routes, and fills in what o leaves to be chosen. It reads neither disk
// nor kernel, so that every option can be fuzzed (FuzzNewNetwork).
func newNetwork(o CreateOptions, existing []Network, routes []netip.Prefix) (*Network, error) {
	if err := checkNetworkName(o.Name); err != nil {
		return nil, err
	}
	n := &Network{Name: o.Name, MTU: o.MTU, Internal: o.Internal, Firewall: o.Firewall}
	if n.Firewall == "" {
		n.Firewall = DefaultFirewall
	}
	if _, err := firewall.New(n.Firewall); err != nil {
		return nil, fmt.Errorf("--firewall: %w", err)
	}
	if o.MTU < 0 || (o.MTU != 0 && (o.MTU < 68 || o.MTU > 65535)) {
		return nil, fmt.Errorf("--mtu %d: must be between 68 and 65535", o.MTU)
	}
	n.Bridge = o.Bridge
	if n.Bridge == "" {
		n.Bridge = bridgeNameFor(o.Name)
	}
	if err := checkIfName("--bridge", n.Bridge); err != nil {
		return nil, err
	}
	for _, e := range existing {
		if e.Bridge == n.Bridge {
			return nil, fmt.Errorf("--bridge %s: already used by network %q", n.Bridge, e.Name)
		}
	}
	if o.Subnet != "" {
		p, err := netip.ParsePrefix(o.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("--subnet %q: not an IPv4 CIDR such as 10.90.0.0/24", o.Subnet)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("--subnet %q: host bits set (did you mean %s?)", o.Subnet, p.Masked())
		}
		if p.Bits() > 30 {
			return nil, fmt.Errorf("--subnet %q: too small, need at least a /30", o.Subnet)
		}
		if err := checkOverlap(p, existing, routes); err != nil {
			return nil, fmt.Errorf("--subnet %s: %w", p, err)
		}
		n.Subnet = p
	} else {
		for _, c := range candidateSubnets {
			if checkOverlap(c, existing, routes) == nil {
				n.Subnet = c
				break
			}
		}
		if !n.Subnet.IsValid() {
			return nil, errors.New("no free subnet left for a new network: pass --subnet")
		}
	}
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil || !g.Is4() {
			return nil, fmt.Errorf("--gateway %q: not an IPv4 address", o.Gateway)
		}
		if !n.Subnet.Contains(g) || g == n.Subnet.Addr() || g == broadcast(n.Subnet) {
			return nil, fmt.Errorf("--gateway %s: not a host address of subnet %s", g, n.Subnet)
		}
		n.Gateway = g
	} else {
		n.Gateway = n.Subnet.Addr().Next()
	}
	// Whatever the backends would refuse at the first container is refused
	// now, while the user is looking.
	if err := firewall.ValidateNetwork(n.firewallNetwork()); err != nil {
		return nil, err
	}
	return n, nil
}

// bridgeNameFor names a network's bridge after the network where it fits.
func bridgeNameFor(name string) string {
	if name == DefaultNetwork {
		return DefaultBridge
	}
	if b := "bt-" + name; len(b) <= maxIfName {
		return b
	}
	return "bt-" + shortHash(name, 12)
}

func checkIfName(what, name string) error {
	if len(name) > maxIfName {
		return fmt.Errorf("%s %q: interface names are at most %d bytes", what, name, maxIfName)
	}
	return checkName(what, name, maxIfName)
}

func checkOverlap(p netip.Prefix, networks []Network, routes []netip.Prefix) error {
	for _, n := range networks {
		if n.Subnet.Overlaps(p) {
			return fmt.Errorf("overlaps network %q (%s)", n.Name, n.Subnet)
		}
	}
	for _, r := range routes {
		if r.Overlaps(p) {
			return fmt.Errorf("overlaps host route %s", r)
		}
	}
	return nil
}

// hostRoutes lists the destinations of the host's IPv4 routes, except the
// default route, which overlaps everything.
func hostRoutes() ([]netip.Prefix, error) {
	rs, err := netlinksafe.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("host routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok && ones > 0 {
			out = append(out, netip.PrefixFrom(a, ones).Masked())
		}
	}
	return out, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (l Layout) saveNetwork(n *Network) error {
	return saveJSON(l.networkFile(n.Name), "network "+n.Name, n)
}

// LoadNetwork reads a network's definition; the default network is
// defined on first use.
func (l Layout) LoadNetwork(name string) (*Network, error) {
	if err := checkName("network name", name, maxNetworkName); err != nil {
		return nil, err
	}
	n, err := l.readNetwork(name)
	if err == nil || !errors.Is(err, os.ErrNotExist) || name != DefaultNetwork {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("network %q does not exist (berth network create %s)", name, name)
		}
		return n, err
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if n, err := l.readNetwork(name); err == nil {
		return n, nil // created meanwhile by another setup
	}
	return l.createNetworkLocked(CreateOptions{Name: DefaultNetwork})
}

func (l Layout) readNetwork(name string) (*Network, error) {
	var n Network
	if err := loadJSON(l.networkFile(name), "network "+name, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// ListNetworks returns every defined network, sorted by name.
func (l Layout) ListNetworks() ([]Network, error) { return l.listNetworks() }

func (l Layout) listNetworks() ([]Network, error) {
	entries, err := os.ReadDir(l.networksDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []Network
	for _, e := range entries {
		// Only NAME.json defines a network; temporary files (new-*) do not.
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || checkName("network name", name, maxNetworkName) != nil {
			continue
		}
		n, err := l.readNetwork(name)
		if err != nil {
			return nil, err
		}
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
