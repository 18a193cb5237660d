package network

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/berth-runtime/berth/hooks/netlinksafe"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Ownership of kernel objects. Several berth-net roots (BERTH_NET_ROOT) can
// share one network namespace, and bridges and veths are named by rules
// that do not depend on the root (berth0, bt<hash of the container id>), so
// a name alone never proves that a link is this root's. berth-net marks
// what it makes with the link's alias (ip link set NAME alias MARK), which
// names the root, and deletes a link only when the link itself says it is
// this root's:
//
//   - a bridge is the root's when its alias is bridgeMark(network);
//   - a veth is the root's when its alias is vethMark(), or when it is
//     attached to one of the root's bridges: the kernel sets no alias when
//     it creates a link, so a setup that died between creating the veth (on
//     the bridge, in the same message) and marking it leaves it attached to
//     its bridge.
//
// Links made by berth before it marked them are nobody's: they are left
// alone, and a bridge network refuses a bridge it cannot prove is its own.

const (
	markPrefix = "berth-net root="
	// maxAlias is IFALIASZ-1: the kernel refuses longer aliases.
	maxAlias = 255
	// maxRootInMark leaves room in a bridge's mark for " network=" and the
	// longest network name (64 bytes, as Docker's); a longer root is named
	// by a hash of its path.
	maxRootInMark = maxAlias - len(markPrefix) - len(" network=") - 64
)

// rootTag names the root in marks: its absolute path, or a hash of it when
// it is too long for an alias.
func (l Layout) rootTag() string {
	root, err := filepath.Abs(l.Root)
	if err != nil {
		root = filepath.Clean(l.Root)
	}
	if len(root) > maxRootInMark {
		return "sha256:" + shortHash(root, 32)
	}
	return root
}

// bridgeMark is the alias of the bridge of this root's network.
func (l Layout) bridgeMark(network string) string {
	return markPrefix + l.rootTag() + " network=" + network
}

// vethMark is the alias of the host end of this root's containers' veths.
func (l Layout) vethMark() string { return markPrefix + l.rootTag() }

// parseBridgeMark reads a bridge's alias: the root and network it names,
// ok=false if the alias is not a bridge mark of any root.
func parseBridgeMark(alias string) (root, network string, ok bool) {
	rest, ok := strings.CutPrefix(alias, markPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, " network=")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(" network="):], true
}

// ownsVeth reports whether link is a veth end this root made: marked as
// its own, or attached to one of its bridges.
func (l Layout) ownsVeth(link netlink.Link) (bool, error) {
	if _, ok := link.(*netlink.Veth); !ok {
		return false, nil
	}
	a := link.Attrs()
	if a.Alias == l.vethMark() {
		return true, nil
	}
	if a.Alias != "" || a.MasterIndex == 0 {
		return false, nil
	}
	master, err := netlink.LinkByIndex(a.MasterIndex)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("bridge of %s: %w", a.Name, err)
	}
	root, _, ok := parseBridgeMark(master.Attrs().Alias)
	return ok && root == l.rootTag(), nil
}

// deleteOwnVeth deletes the veth pair whose host end is name, if that end
// is this root's: another root's container may have a veth of that name
// (the name comes from the container id alone).
func (l Layout) deleteOwnVeth(name string) error {
	link, err := existingLink(name)
	if err != nil || link == nil {
		return err
	}
	own, err := l.ownsVeth(link)
	if err != nil || !own {
		return err
	}
	return deleteLink(name)
}

// bridgeState is what an existing link named as a network's bridge says
// about whose it is.
type bridgeState int

const (
	bridgeReady      bridgeState = iota // this network's, with its gateway: use it
	bridgeUnfinished                    // this network's, not yet (or no longer) addressed: finish it
	bridgeForeign                       // not provably this network's: refuse it
)

// checkBridge tells whether link, found under n's bridge name, is n's
// bridge, and if not, why (the error names the bridge, what it carries and
// this root). locked says the caller holds the root lock, under which
// bridges are made: an unmarked, unaddressed bridge with no ports is then
// one whose setup died before marking it (it is marked right after it is
// created), not one being made by a setup running now.
func (l Layout) checkBridge(n *Network, link netlink.Link, locked bool) (bridgeState, error) {
	name := n.Bridge
	if _, ok := link.(*netlink.Bridge); !ok {
		return bridgeForeign, errdefs.Conflict(fmt.Errorf("bridge %s: an interface of type %s already has that name", name, link.Type()))
	}
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return bridgeForeign, fmt.Errorf("bridge %s: %w", name, err)
	}
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
	var carried, others []string
	for _, a := range addrs {
		p := addrPrefix(a)
		carried = append(carried, p.String())
		if p != gw {
			others = append(others, p.String())
		}
	}
	hasGateway := len(carried) > len(others)
	alias := link.Attrs().Alias
	switch {
	case alias == l.bridgeMark(n.Name) && len(others) > 0:
		return bridgeForeign, errdefs.Conflict(fmt.Errorf("bridge %s carries %s, not network %s's gateway %s only (left by an earlier network of that name? ip link del %s)",
			name, strings.Join(carried, ", "), n.Name, gw, name))
	case alias == l.bridgeMark(n.Name) && hasGateway:
		return bridgeReady, nil
	case alias == l.bridgeMark(n.Name):
		return bridgeUnfinished, nil
	case alias == "" && len(addrs) == 0 && locked && !hasPorts(link):
		return bridgeUnfinished, nil
	case !locked:
		return bridgeForeign, nil // the caller looks again under the lock
	}
	owner := "no berth-net root (it has no berth mark: made by hand, by another tool or by an older berth)"
	if root, network, ok := parseBridgeMark(alias); ok {
		owner = fmt.Sprintf("berth-net root %s (its network %q)", root, network)
	}
	if len(carried) == 0 {
		carried = []string{"no address"}
	}
	return bridgeForeign, errdefs.Conflict(fmt.Errorf("bridge %s already exists (address %s) and belongs to %s, not to network %s (gateway %s) of berth-net root %s: choose another bridge name (--bridge) or remove that bridge",
		name, strings.Join(carried, ", "), owner, n.Name, gw, l.rootTag()))
}

// checkNetworkNameFree refuses n when a bridge of another root in this
// namespace carries a network of the same name: the firewall names its
// per-network chains after the network, so the two would share them.
func (l Layout) checkNetworkNameFree(n *Network) error {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	for _, link := range links {
		root, network, ok := parseBridgeMark(link.Attrs().Alias)
		if ok && network == n.Name && root != l.rootTag() {
			return fmt.Errorf("network %s: berth-net root %s already has a network of that name in this network namespace (bridge %s), and the firewall's rules are named after the network: use another network name in root %s",
				n.Name, root, link.Attrs().Name, l.rootTag())
		}
	}
	return nil
}

// checkBridgeName refuses a new network whose bridge name is taken, in this
// namespace, by a link that is not one of this root's bridges.
func (l Layout) checkBridgeName(n *Network) error {
	link, err := existingLink(n.Bridge)
	if err != nil || link == nil {
		return err
	}
	if root, _, ok := parseBridgeMark(link.Attrs().Alias); ok && root == l.rootTag() {
		return nil // left by an earlier network of this root: setup checks its address
	}
	_, err = l.checkBridge(n, link, true)
	return err
}

func hasPorts(bridge netlink.Link) bool {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return true // in doubt, not ours
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == bridge.Attrs().Index {
			return true
		}
	}
	return false
}

func addrPrefix(a netlink.Addr) netip.Prefix {
	ip, _ := netip.AddrFromSlice(a.IP.To4())
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip, ones)
}

// ownsBridgeOrNone reports whether n's bridge is this network's or absent,
// that is whether the bridge and the rules keyed on its name may go with n.
func (l Layout) ownsBridgeOrNone(n *Network) (bool, error) {
	link, err := existingLink(n.Bridge)
	if err != nil || link == nil {
		return err == nil, err
	}
	if link.Attrs().Alias == l.bridgeMark(n.Name) {
		return true, nil
	}
	state, err := l.checkBridge(n, link, true)
	if err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return false, err // could not look: nothing proves it ours, nor foreign
	}
	return state == bridgeUnfinished, nil
}
