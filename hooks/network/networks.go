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
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/names"
)

// The network every bridge container joins unless told otherwise, as
// Docker's "bridge". It exists without being created: ls and inspect show
// it as it would be defined, and its definition is written the first time
// a container uses it. `berth network create bridge --subnet CIDR` before
// that (or after `berth network rm bridge`) defines it otherwise.
const (
	DefaultNetwork = "bridge"
	DefaultBridge  = "berth0"
)

// DefaultFirewall is the backend of networks created without --firewall:
// nftables programs the kernel over netlink in one batch and publishes a
// port by adding a map element, so a setup costs no exec at all.
const DefaultFirewall = "nftables"

// Network is a named bridge network, as `berth network inspect` shows it.
type Network struct {
	Name     string       `json:"name"`
	Bridge   string       `json:"bridge"`
	Subnet   netip.Prefix `json:"subnet"`
	Gateway  netip.Addr   `json:"gateway"`
	MTU      int          `json:"mtu,omitempty"`
	Internal bool         `json:"internal,omitempty"`
	Firewall string       `json:"firewall"`
	Created  time.Time    `json:"created,omitzero"` // zero: the default network, not yet defined
	// SetUp: the bridge and rules were made (by the first container).
	// They stay until `network rm`, and `network reload` restores them.
	SetUp bool `json:"setUp,omitempty"`
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
// --subnet, skipping any that overlap a host route or another network; the
// default network, usually the first defined, gets DefaultSubnet.
//
// They avoid what the common tools take by default, because a tool that
// comes second does not always look at the routes: podman's default
// network is 10.88.0.0/16 and, with a host route of berth's pointing at
// berth's bridge, its containers were unreachable and neither noticed. The
// ranges avoided: Docker's 172.17.0.0/16 and its pools 172.17-31.0.0/16
// and 192.168.0.0/16 (/20s), swarm's overlays from 10.0.0.0/8 (/24s,
// upward from 10.0.0.0); podman's 10.88.0.0/16 and its pools from
// 10.89.0.0/24 upward; containerd's CNI example 10.88.0.0/16; nerdctl's
// 10.4.0.0/24 and up; flannel's and kind's 10.244.0.0/16, kind's and
// kubeadm's services 10.96.0.0/12; k3s's 10.42.0.0/16 and 10.43.0.0/16;
// Weave's 10.32.0.0/12; Calico's 192.168.0.0/16 and microk8s's
// 10.1.0.0/16; Cilium's pods from 10.0.0.0/8 (/24s, upward); libvirt's
// 192.168.122.0/24, VirtualBox's 192.168.56.0/24 and 10.0.2.0/24,
// minikube's 192.168.49.0/24. What is left between k3s and Weave below and
// podman above, 10.48.0.0-10.87.255.255, no common tool allocates from by
// default; the /16s of it are tried from 10.77 (LXD and Incus pick a random
// 10.x.y.0/24: the host-route check is what keeps clear of those).
var candidateSubnets = func() []netip.Prefix {
	var out []netip.Prefix
	for i := 77; i <= 87; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)))
	}
	for i := 48; i < 77; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)))
	}
	return out
}()

// DefaultSubnet is the default network's subnet unless a host route or
// another network already covers it.
var DefaultSubnet = candidateSubnets[0]

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
	if err := names.NetworkName(o.Name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.networkFile(o.Name)); err == nil {
		return nil, errdefs.AlreadyExists(fmt.Errorf("network %q already exists", o.Name))
	}
	n, err := l.proposeNetwork(o)
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

// proposeNetwork is the network o would define now, against the networks
// defined and the host's routes. It writes nothing.
func (l Layout) proposeNetwork(o CreateOptions) (*Network, error) {
	existing, err := l.listNetworks()
	if err != nil {
		return nil, err
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	return newNetwork(o, existing, routes)
}

// newNetwork checks o against the networks that exist and the host's
// routes, and fills in what o leaves to be chosen. It reads neither disk
// nor kernel, so that every option can be fuzzed (FuzzNewNetwork).
func newNetwork(o CreateOptions, existing []Network, routes []netip.Prefix) (*Network, error) {
	if err := names.NetworkName(o.Name); err != nil {
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
	if err := names.InterfaceName("--bridge", n.Bridge); err != nil {
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
	if b := "bt-" + name; len(b) <= names.MaxInterfaceName {
		return b
	}
	return "bt-" + shortHash(name, 12)
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

// ShowNetwork reads a network's definition; the default network, until
// it is defined, is shown as it would be defined now. It writes nothing.
func (l Layout) ShowNetwork(name string) (*Network, error) {
	if err := names.NetworkName(name); err != nil {
		return nil, err
	}
	n, err := l.readNetwork(name)
	if errors.Is(err, os.ErrNotExist) && name == DefaultNetwork {
		return l.proposeNetwork(CreateOptions{Name: DefaultNetwork})
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoNetwork(name)
	}
	return n, err
}

// LoadNetwork reads a network's definition for a container that joins
// it: the default network is defined on first use.
func (l Layout) LoadNetwork(name string) (*Network, error) {
	if err := names.NetworkName(name); err != nil {
		return nil, err
	}
	n, err := l.readNetwork(name)
	if err == nil || !errors.Is(err, os.ErrNotExist) || name != DefaultNetwork {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNoNetwork(name)
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

// ListNetworks returns every defined network and the default network,
// defined or not (as Docker's ls always shows "bridge"), sorted by name.
// It writes nothing.
func (l Layout) ListNetworks() ([]Network, error) {
	nets, err := l.listNetworks()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Name == DefaultNetwork {
			return nets, nil
		}
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	def, err := newNetwork(CreateOptions{Name: DefaultNetwork}, nets, routes)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", DefaultNetwork, err)
	}
	nets = append(nets, *def)
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	return nets, nil
}

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
		if !ok || names.NetworkName(name) != nil {
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

// errNoNetwork is the error for a network that is not defined.
func errNoNetwork(name string) error {
	return errdefs.NotFound(fmt.Errorf("network %q does not exist (berth network create %s)", name, name))
}
