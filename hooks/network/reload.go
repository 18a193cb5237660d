package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/berth-runtime/berth/hooks/drift"
	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/ports"
	"github.com/berth-runtime/berth/hooks/portspec"
)

// Drift is one kernel object that berth's records call for and the kernel
// lacks (package drift).
type Drift = drift.Drift

// Reconcile compares the kernel with what berth's records call for and,
// with repair, restores what is missing; `berth network check` is
// Reconcile(false) and `berth network reload` Reconcile(true), one pass
// for both. Called for are, for every network whose bridge was made
// (SetUp) or that has a running container:
//
//   - net.ipv4.ip_forward=1;
//   - its bridge, up, with the gateway address, and route_localnet=1;
//   - its firewall rules (firewall.Backend.Reconcile);
//
// and for every running container on such a network: its host veth on
// the bridge, up, with hairpin on, and the DNAT of the ports it holds.
// Restoring makes each object as setup does; objects berth does not own
// are never changed, and a second call finds nothing to do.
//
// It holds the containers lock, the root lock and the links lock, so it
// runs alone: it never sees a network or a container half made or half
// undone.
func (l Layout) Reconcile(repair bool) ([]Drift, error) {
	if _, err := os.Stat(l.Root); errors.Is(err, os.ErrNotExist) {
		return nil, nil // berth never ran with this root: nothing is called for
	}
	unlock, err := l.lockExclusive()
	if err != nil {
		return nil, err
	}
	defer unlock()
	unlockLinks, err := lockLinks()
	if err != nil {
		return nil, err
	}
	defer unlockLinks()

	nets, recs, err := l.networksAndRecords()
	if err != nil {
		return nil, err
	}
	running := map[string][]Record{}
	for _, r := range recs {
		if r.Mode == "bridge" && r.running() {
			running[r.Network] = append(running[r.Network], r)
		}
	}
	var active []Network
	for _, n := range nets {
		if n.SetUp || len(running[n.Name]) > 0 {
			active = append(active, n)
		}
	}
	if len(active) == 0 {
		return nil, nil
	}

	var steps []drift.Step
	steps = append(steps, checkSysctl("net/ipv4/ip_forward", ""))
	for i := range active {
		n := &active[i]
		bridgeSteps, err := l.bridgeRepairs(n)
		if err != nil {
			return nil, err
		}
		steps = append(steps, bridgeSteps...)
		steps = append(steps, checkSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", " (network "+n.Name+")"))
		for _, r := range running[n.Name] {
			vethSteps, err := l.checkVeth(n, &r)
			if err != nil {
				return nil, err
			}
			steps = append(steps, vethSteps...)
		}
	}
	// The kernel's links and sysctls come first: the firewall's rules name
	// the bridges.
	found := drift.Settle(steps, repair, "net.reload.restored")

	fwFound, err := l.reconcileFirewalls(active, running, repair)
	return append(found, fwFound...), err
}

// reconcileFirewalls hands each backend the networks that use it and the
// ports that running containers hold on them.
func (l Layout) reconcileFirewalls(active []Network, running map[string][]Record, repair bool) ([]Drift, error) {
	byBackend := map[string]*firewall.Desired{}
	var reg *ports.Registry
	for _, n := range active {
		want := byBackend[n.Firewall]
		if want == nil {
			want = &firewall.Desired{}
			byBackend[n.Firewall] = want
		}
		fn := n.firewallNetwork()
		want.Networks = append(want.Networks, fn)
		for _, r := range running[n.Name] {
			if len(r.Ports) == 0 || !r.Addr.IsValid() || n.Internal {
				continue
			}
			if reg == nil {
				var err error
				if reg, err = ports.Open(l.portsDir()); err != nil {
					return nil, err
				}
			}
			held, err := heldMappings(reg, &r)
			if err != nil {
				return nil, err
			}
			if len(held) > 0 {
				want.Endpoints = append(want.Endpoints, firewall.Endpoint{ContainerID: r.ID, Network: fn, Addr: r.Addr, Ports: held})
			}
		}
	}
	kinds := make([]string, 0, len(byBackend))
	for k := range byBackend {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var out []Drift
	for _, kind := range kinds {
		fw, err := firewall.New(kind)
		if err != nil {
			return out, err
		}
		found, err := fw.Reconcile(*byBackend[kind], repair)
		out = append(out, found...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// checkSysctl: a sysctl that setup sets to 1. A missing key (the bridge
// is gone) is missing too: it comes back with the bridge, and is set then.
func checkSysctl(key, whose string) drift.Step {
	cur, _ := os.ReadFile("/proc/sys/" + key)
	if string(cur) == "1\n" {
		return drift.Step{}
	}
	return drift.Step{
		Missing: []string{"sysctl -w " + sysctlName(key) + "=1" + whose},
		Restore: func() error { return writeSysctl(key, "1") },
	}
}

// sysctlName is key as sysctl(8) spells it: net.ipv4.conf.berth0.route_localnet.
func sysctlName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '/' {
			b[i] = '.'
		}
	}
	return string(b)
}

// bridgeRepairs: the bridge, marked as this root's network's, with its
// gateway address, up. A missing bridge is made whole by createBridge; a
// link of that name that is not provably this network's bridge (owner.go's
// checkBridge: another type, another root's or nobody's mark, other
// addresses) is reported and left alone.
func (l Layout) bridgeRepairs(n *Network) ([]drift.Step, error) {
	whose := " (network " + n.Name + ")"
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
	mark := l.bridgeMark(n.Name)
	addBridge := "ip link add " + n.Bridge + " type bridge" + whose
	setMark := "ip link set " + n.Bridge + " alias \"" + mark + "\"" + whose
	addAddr := "ip addr add " + gw.String() + " dev " + n.Bridge + whose
	setUp := "ip link set " + n.Bridge + " up" + whose
	link, err := existingLink(n.Bridge)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	if link == nil {
		return []drift.Step{{Missing: []string{addBridge, setMark, addAddr, setUp}, Restore: func() error {
			_, err := createBridge(n, mark)
			return err
		}}}, nil
	}
	// Reconcile holds the root lock, under which bridges are made.
	state, ownErr := l.checkBridge(n, link, true)
	switch {
	case state == bridgeForeign:
		// The link exists but is not this network's bridge: what is missing
		// is the bridge, and `check` says why it cannot be had.
		return []drift.Step{{Missing: []string{addBridge + " (that name is taken: " + ownErr.Error() + ")"}, Restore: func() error {
			return fmt.Errorf("not berth's, left alone: %w", ownErr)
		}}}, nil
	case state == bridgeUnfinished:
		// This network's bridge without its gateway address, or a bridge
		// whose setup died before marking it: finish it as setup does.
		missing := []string{addAddr}
		if link.Attrs().Alias != mark {
			missing = []string{setMark, addAddr}
		}
		return []drift.Step{{Missing: missing, Restore: func() error {
			_, err := createBridge(n, mark)
			return err
		}}}, nil
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return []drift.Step{{Missing: []string{setUp}, Restore: func() error {
			if err := netlink.LinkSetUp(link); err != nil {
				return fmt.Errorf("bring up bridge %s: %w", n.Bridge, err)
			}
			return nil
		}}}, nil
	}
	return nil, nil
}

// checkVeth: a running container's host veth is a port of its network's
// bridge (a bridge made again has none), up, with hairpin on. A veth that
// is gone took the container's eth0 with it: only a restart of the
// container brings that back.
func (l Layout) checkVeth(n *Network, r *Record) ([]drift.Step, error) {
	whose := " (container " + r.ID + ")"
	veth, err := existingLink(r.HostVeth)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", r.ID, err)
	}
	if veth == nil {
		return []drift.Step{{Missing: []string{"veth " + r.HostVeth + " (eth0 of container " + r.ID + ")"}, Restore: func() error {
			return errors.New("gone with the container's eth0: restart the container")
		}}}, nil
	}
	// Veth names come from the container id alone: another root's
	// container of the same id has a veth of this name.
	if own, err := l.ownsVeth(veth); err != nil || !own {
		if err == nil {
			err = fmt.Errorf("veth %s is not this root's (another berth-net root's container of the same id?): left alone", r.HostVeth)
		}
		return []drift.Step{{Missing: []string{"veth " + r.HostVeth + " (eth0 of container " + r.ID + ")"}, Restore: func() error {
			return err
		}}}, nil
	}
	var steps []drift.Step
	bridge, err := netlink.LinkByName(n.Bridge)
	attached := err == nil && veth.Attrs().MasterIndex == bridge.Attrs().Index
	if !attached {
		steps = append(steps, drift.Step{Missing: []string{"ip link set " + r.HostVeth + " master " + n.Bridge + whose}, Restore: func() error {
			// The bridge may have been made again just now.
			bridge, err := netlink.LinkByName(n.Bridge)
			if err == nil {
				err = netlink.LinkSetMaster(veth, bridge)
			}
			if err != nil {
				return fmt.Errorf("attach %s to bridge %s: %w", r.HostVeth, n.Bridge, err)
			}
			return nil
		}})
	}
	// A port that left its bridge comes back with hairpin off.
	hairpin := false
	if attached {
		if pi, err := netlink.LinkGetProtinfo(veth); err == nil {
			hairpin = pi.Hairpin
		}
	}
	if !hairpin {
		steps = append(steps, drift.Step{Missing: []string{"bridge link set dev " + r.HostVeth + " hairpin on" + whose}, Restore: func() error {
			if err := netlink.LinkSetHairpin(veth, true); err != nil {
				return fmt.Errorf("hairpin on %s: %w", r.HostVeth, err)
			}
			return nil
		}})
	}
	if veth.Attrs().Flags&net.FlagUp == 0 {
		steps = append(steps, drift.Step{Missing: []string{"ip link set " + r.HostVeth + " up" + whose}, Restore: func() error {
			if err := netlink.LinkSetUp(veth); err != nil {
				return fmt.Errorf("bring up %s: %w", r.HostVeth, err)
			}
			return nil
		}})
	}
	return steps, nil
}

// markSetUp records in the network's definition that its bridge and
// rules are being made, before they are: Reconcile keeps a network so
// marked in place until `network rm`, with or without containers.
func (l Layout) markSetUp(name string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	n, err := l.readNetwork(name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network %q was removed meanwhile", name)
	}
	if err != nil || n.SetUp {
		return err
	}
	n.SetUp = true
	return l.saveNetwork(n)
}

// heldMappings are the mappings of rec that its container holds in the
// port registry: setup reserves a port before it adds its DNAT, so a port
// the container does not hold never had a rule of this container's.
func heldMappings(reg *ports.Registry, rec *Record) ([]portspec.Mapping, error) {
	held, err := reg.HeldBy(rec.ID)
	if err != nil {
		return nil, err
	}
	var mine []portspec.Mapping
	for _, m := range rec.Ports {
		if slices.ContainsFunc(held, func(h portspec.Mapping) bool { return samePort(h, m) }) {
			mine = append(mine, m)
		}
	}
	return mine, nil
}
