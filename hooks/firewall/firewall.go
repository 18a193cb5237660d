// Package firewall installs the NAT and filtering rules behind berth's
// Docker-style bridge networks, with two interchangeable backends:
//
//   - "iptables": github.com/coreos/go-iptables for the per-network rules and
//     one `iptables-restore --noflush -w` exec per AddPorts/RemovePorts, so
//     publishing a container's ports costs one exec however many it has.
//   - "nftables": github.com/google/nftables over netlink, no exec at all.
//     Everything lives in one table, `ip berth`; per-container ports are
//     elements of maps, added and removed in one netlink batch.
//
// What the rules achieve, for a network with bridge B and subnet S:
//
//   - Traffic from S leaving by any interface but B is masqueraded (not on
//     Internal networks).
//   - Published ports are DNAT'd to the container when the destination is a
//     local address: from other hosts (nat PREROUTING), from the host itself,
//     127.0.0.1 included (nat OUTPUT), and from sibling containers (hairpin,
//     with masquerade so the reply comes back through the host).
//   - Ports published on a loopback address are DNAT'd only in nat OUTPUT,
//     never in PREROUTING (moby#45610), and packets addressed straight to the
//     container's port that did not come from the bridge are dropped in raw
//     PREROUTING, so a neighbour that routes through this host can reach them
//     neither way.
//   - FORWARD accepts what the network needs and nothing about other
//     traffic is changed: no policy is set and no foreign chain is flushed or
//     reordered. Containers of two berth networks cannot reach each other;
//     Internal networks neither send nor receive anything beyond their bridge.
//
// # Network namespaces
//
// A Backend works on the network namespace of the calling OS thread. The
// caller must run it from a goroutine locked to a thread (runtime.LockOSThread)
// that is in the wanted namespace: the nftables and conntrack netlink sockets
// are opened on that thread, and the iptables commands are forked from it and
// inherit its namespace.
//
// The caller also owns everything that is not firewall: the bridge, veths,
// addresses, routes, net.ipv4.ip_forward, hairpin mode on bridge ports, and
// net.ipv4.conf.<bridge>.route_localnet=1 (without it the kernel refuses to
// route the 127.0.0.1-sourced packets of a local client to the bridge).
//
// Only IPv4 is handled.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/internal/nslock"
)

// Network is a berth bridge network.
type Network struct {
	Name     string       // berth network name, e.g. "berth0" or user-chosen "front"
	Bridge   string       // Linux bridge interface, e.g. "berth0"
	Subnet   netip.Prefix // e.g. 10.77.0.0/16
	Gateway  netip.Addr   // the bridge's address, e.g. 10.77.0.1
	Internal bool         // no masquerade, no traffic in or out of the network except between its members
}

// Endpoint is one container's attachment to a network and the ports it publishes there.
type Endpoint struct {
	ContainerID string
	Network     Network
	Addr        netip.Addr         // the container's address on the bridge
	Ports       []portspec.Mapping // published ports
}

// Backend installs and removes berth's firewall rules in the current network namespace.
type Backend interface {
	Name() string // "iptables" or "nftables"
	// SetupNetwork installs the rules a network needs (idempotent: calling it twice leaves one copy of each rule),
	// creating berth's chains/table and the jumps into them on first use.
	SetupNetwork(n Network) error
	// TeardownNetwork removes exactly the network's rules; when no berth network is left, also berth's chains/table and jumps. Succeeds if already gone.
	TeardownNetwork(n Network) error
	// AddPorts publishes e.Ports (one batch); RemovePorts undoes exactly that and succeeds if already gone.
	AddPorts(e Endpoint) error
	RemovePorts(e Endpoint) error
	// Reconcile lists what of want's rules and published ports the kernel
	// lacks; with repair it restores that, and nothing else (reconcile.go).
	Reconcile(want Desired, repair bool) ([]Drift, error)
}

// New returns the backend named kind: "iptables" or "nftables".
func New(kind string) (Backend, error) {
	switch kind {
	case "iptables":
		return newIPTables("iptables")
	case "nftables":
		return newNFTables(), nil
	default:
		return nil, fmt.Errorf("firewall: unknown backend %q (want \"iptables\" or \"nftables\")", kind)
	}
}

// opTimeout bounds every external command and lock wait.
const opTimeout = 30 * time.Second

// ValidateNetwork checks a Network as every backend does before building a
// rule from it; networks.go calls it too, so that a network is refused when
// it is defined rather than when its first container starts.
func ValidateNetwork(n Network) error {
	// Names end up in nft chain names and iptables comments.
	if err := names.NetworkName(n.Name); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	if err := names.InterfaceName("bridge", n.Bridge); err != nil {
		return fmt.Errorf("firewall: network %q: %w", n.Name, err)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
		return fmt.Errorf("firewall: network %q: subnet %v is not an IPv4 prefix", n.Name, n.Subnet)
	}
	if !n.Gateway.Is4() || !n.Subnet.Contains(n.Gateway) {
		return fmt.Errorf("firewall: network %q: gateway %v is not in subnet %v", n.Name, n.Gateway, n.Subnet)
	}
	return nil
}

// validateEndpoint checks an Endpoint and its port mappings.
func validateEndpoint(e Endpoint) error {
	if err := ValidateNetwork(e.Network); err != nil {
		return err
	}
	if e.ContainerID == "" {
		return errors.New("firewall: endpoint has no container ID")
	}
	if !e.Addr.Is4() || !e.Network.Subnet.Contains(e.Addr) {
		return fmt.Errorf("firewall: container %s: address %v is not in subnet %v", e.ContainerID, e.Addr, e.Network.Subnet)
	}
	for _, m := range e.Ports {
		if m.Protocol != "tcp" && m.Protocol != "udp" {
			return fmt.Errorf("firewall: container %s: port %d: protocol %q is neither tcp nor udp", e.ContainerID, m.HostPort, m.Protocol)
		}
		if m.HostPort == 0 || m.ContainerPort == 0 {
			return fmt.Errorf("firewall: container %s: mapping %d->%d/%s: ports must be non-zero", e.ContainerID, m.HostPort, m.ContainerPort, m.Protocol)
		}
		if m.HostIP.IsValid() && !m.HostIP.Unmap().Is4() {
			return fmt.Errorf("firewall: container %s: host address %v: only IPv4 is supported", e.ContainerID, m.HostIP)
		}
	}
	return nil
}

// validatePublish is validateEndpoint plus what only publishing forbids:
// nothing can reach an internal network, so it has no ports to publish.
func validatePublish(e Endpoint) error {
	if err := validateEndpoint(e); err != nil {
		return err
	}
	if e.Network.Internal && len(e.Ports) > 0 {
		return fmt.Errorf("firewall: container %s: network %q is internal: ports cannot be published on it", e.ContainerID, e.Network.Name)
	}
	return nil
}

// hostScope says which host addresses a mapping listens on; it decides which
// chain or map the mapping's DNAT goes to.
type hostScope int

const (
	anyAddress      hostScope = iota // every local address: PREROUTING and OUTPUT
	specificAddress                  // one non-loopback address: PREROUTING and OUTPUT, only for that destination
	loopbackAddress                  // 127.0.0.0/8: OUTPUT only, plus the raw-table guard
)

// scopeOf classifies a mapping's HostIP.
func scopeOf(m portspec.Mapping) hostScope {
	ip := m.HostIP.Unmap()
	switch {
	case !ip.IsValid() || ip.IsUnspecified():
		return anyAddress
	case ip.IsLoopback():
		return loopbackAddress
	default:
		return specificAddress
	}
}

// containerTag is the container ID reduced to characters that are safe in an
// iptables comment or an nft element comment, and short enough for both.
// Container ids are made of these characters (runc's set, '+' included),
// so the tag names the container exactly unless its id is longer.
func containerTag(id string) string {
	b := make([]byte, 0, len(id))
	for i := 0; i < len(id) && len(b) < 64; i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+' {
			b = append(b, c)
		}
	}
	return "berth:" + string(b)
}

// udpHostPorts lists the distinct host ports of e's UDP mappings.
func udpHostPorts(e Endpoint) []uint16 {
	var ports []uint16
	seen := map[uint16]bool{}
	for _, m := range e.Ports {
		if m.Protocol == "udp" && !seen[m.HostPort] {
			seen[m.HostPort] = true
			ports = append(ports, m.HostPort)
		}
	}
	return ports
}

// lockName names the abstract unix socket whose binding serialises network
// setup and teardown across berth processes (berth has no daemon: every
// container start runs its own hooks). Without it two SetupNetwork calls
// could both see a rule missing and both add it, or a TeardownNetwork could
// remove the shared chains while another process is setting up a network.
// The nftables backend's per-container calls take it too (RemovePorts reads
// the port maps before it changes them); iptables' need not:
// iptables-restore runs are atomic on their own.
var lockName = "berth/firewall.lock"

// lockNetworks takes the network lock (package nslock), waiting at most
// opTimeout. It must run on the thread that is in the firewall's network
// namespace.
func lockNetworks() (unlock func(), err error) {
	unlock, err = nslock.Acquire(lockName, opTimeout)
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return unlock, nil
}
