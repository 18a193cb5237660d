package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/crashpoint"
)

// Each function below is one kernel step, named after what it does; the
// comment shows the ip(8) command that does the same.

// createBridge: ip link add NAME type bridge; ip link set NAME alias MARK;
// ip link set NAME up; sysctl -w net.ipv4.conf.NAME.route_localnet=1;
// ip addr add GW/BITS dev NAME. The mark (owner.go)
// says whose bridge it is; the kernel ignores an alias given with
// `ip link add`, so it is set right after, before anything else.
func createBridge(n *Network, mark string) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.Bridge
	if n.MTU > 0 {
		attrs.MTU = n.MTU
	}
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
	}
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("create bridge %s: an interface of type %s already has that name", n.Bridge, link.Type())
	}
	crashpoint.Hit("net.setup.bridge-unmarked")
	if err := markLink(link, mark); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring up bridge %s: %w", n.Bridge, err)
	}
	if err := enableRouteLocalnet(n.Bridge); err != nil {
		return nil, err
	}
	// The gateway address last: a marked bridge with it is a finished one
	// (checkBridge), so a crash before it leaves a bridge setup finishes.
	gw := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))}
	if err := netlink.AddrReplace(link, gw); err != nil {
		return nil, fmt.Errorf("address bridge %s with %s: %w", n.Bridge, gw.IPNet, err)
	}
	return link, nil
}

// enableForwarding: sysctl -w net.ipv4.ip_forward=1. Without it the host
// drops everything the containers send to other hosts.
func enableForwarding() error {
	return writeSysctl("net/ipv4/ip_forward", "1")
}

// enableRouteLocalnet: sysctl -w net.ipv4.conf.BRIDGE.route_localnet=1.
// The host reaches a published port at 127.0.0.1 by DNAT to the container;
// the packet then leaves by the bridge with a loopback source (masqueraded
// on the way out), which the kernel only routes when this is set.
func enableRouteLocalnet(bridge string) error {
	return writeSysctl("net/ipv4/conf/"+bridge+"/route_localnet", "1")
}

func writeSysctl(key, value string) error {
	path := "/proc/sys/" + key
	cur, err := os.ReadFile(path)
	if err == nil && string(cur) == value+"\n" {
		return nil // already set: don't dirty it (and don't need write access)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// createVethPair: ip link add HOST mtu MTU master BRIDGE up type veth peer
// name eth0 mtu MTU netns PID; ip link set HOST alias MARK; bridge link set
// dev HOST hairpin on. A veth
// pair is a virtual cable: what enters one end leaves the other. The host
// end joins the bridge and the container's end appears in the container's
// namespace already named eth0, so nothing has to be moved or renamed
// later. Hairpin lets a container reach itself through a published port:
// the bridge may send a frame back out of the port it came in on.
func createVethPair(host string, bridge netlink.Link, ns netns.NsHandle, mtu int, mark string) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = host
	attrs.MasterIndex = bridge.Attrs().Index
	attrs.Flags = net.FlagUp
	if mtu > 0 {
		attrs.MTU = mtu
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns)), PeerTxQLen: -1}
	if mtu > 0 {
		veth.PeerMTU = uint32(mtu)
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth pair %s/eth0 on bridge %s: %w", host, bridge.Attrs().Name, err)
	}
	crashpoint.Hit("net.setup.veth-unmarked")
	if err := markLink(veth, mark); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetHairpin(veth, true); err != nil {
		return nil, fmt.Errorf("hairpin on %s: %w", host, err)
	}
	return veth, nil
}

// addressLink: (in the container) ip addr add ADDR/BITS dev eth0.
func addressLink(h *netlink.Handle, link netlink.Link, addr netip.Prefix) error {
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("address eth0 with %s: %w", addr, err)
	}
	return nil
}

// bringUp: (in the container) ip link set NAME up.
func bringUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	return setUp(h, link)
}

// setUp: (in the container) ip link set LINK up.
func setUp(h *netlink.Handle, link netlink.Link) error {
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// addDefaultRoute: (in the container) ip route add default via GATEWAY.
func addDefaultRoute(h *netlink.Handle, gw netip.Addr) error {
	if err := h.RouteAdd(&netlink.Route{Gw: net.IP(gw.AsSlice()), Scope: netlink.SCOPE_UNIVERSE}); err != nil {
		return fmt.Errorf("add default route via %s: %w", gw, err)
	}
	return nil
}

// markLink: ip link set NAME alias MARK.
func markLink(link netlink.Link, mark string) error {
	if err := netlink.LinkSetAlias(link, mark); err != nil {
		return fmt.Errorf("mark %s as berth's (alias %q): %w", link.Attrs().Name, mark, err)
	}
	return nil
}

// existingLink: ip link show NAME; nil (and no error) if there is none.
func existingLink(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return link, nil
}

// deleteLink: ip link del NAME. Deleting one end of a veth pair deletes
// the other; a missing link is not an error (teardown may run twice).
func deleteLink(name string) error {
	link, err := existingLink(name)
	if err != nil || link == nil {
		return err
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// routeNetlinkAt opens a NETLINK_ROUTE socket in the container's namespace:
// links, addresses and routes are all the container's end needs. Without
// the family, netlink.NewHandleAt opens one socket per netlink family it
// knows (xfrm and netfilter too), entering the namespace for each, and
// needs the xfrm_user module loaded.
func routeNetlinkAt(ns netns.NsHandle) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in the container's namespace: %w", err)
	}
	return h, nil
}

func bringUpLoopback(ns netns.NsHandle) error {
	h, err := routeNetlinkAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return bringUp(h, "lo")
}
