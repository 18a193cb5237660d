package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The nftables backend keeps everything in one table, `ip berth`:
//
//	table ip berth {
//	  set bridges                  every berth bridge (isolation, loopback guard)
//	  map tcp-any, udp-any         host port : container addr . port   (published on every address)
//	  map tcp-addr, udp-addr       host addr . port : container addr . port (one address)
//	  map tcp-loopback, ...        the same, for 127/8 host addresses: nat-OUTPUT only
//	  set loopback-only            container addr . proto . port of those
//	  map *-jumps                  bridge : jump <per-network chain>
//	  chain nat-PREROUTING, nat-OUTPUT, nat-POSTROUTING, filter-FORWARD, raw-PREROUTING (base chains)
//	  chain nat-published          the DNAT map lookups, shared by PREROUTING and OUTPUT
//	  chain filter-forward-from__<net>, filter-forward-to__<net>,
//	        nat-postrouting-from__<net>, nat-postrouting-to__<net>   (one set per network)
//	}
//
// A network is its four chains plus one element in each jump map and in
// bridges, all added or removed in one batch. A published port is one map
// element, added in one batch; RemovePorts reads the port maps first, to
// delete only elements that are still the endpoint's.

const nftTable = "berth"

// Chain priorities: the same as iptables' nat and filter tables (and Docker's
// nftables backend), so berth's chains sit beside the iptables-nft ones.
var (
	prioDstNAT = nftables.ChainPriorityNATDest   // -100
	prioSrcNAT = nftables.ChainPriorityNATSource // 100
	prioFilter = nftables.ChainPriorityFilter    // 0
	prioRaw    = nftables.ChainPriorityRaw       // -300, before conntrack
)

// Element types.
var (
	addrPortType      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	addrProtoPortType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
)

// Registers: NFT_REG_1 is 16 bytes wide; NFT_REG32_01/02 are its second and
// third 4-byte words, where concatenated keys and map data continue.
const (
	reg1    = 1
	reg32x1 = 9
	reg32x2 = 10
)

// nftObjects names berth's table, sets and chains. It is built fresh for
// every operation because AddSet records batch-local IDs in the Set.
type nftObjects struct {
	table *nftables.Table

	bridges      *nftables.Set
	portMaps     map[portMapKey]*nftables.Set
	loopbackOnly *nftables.Set

	forwardFromJumps, forwardToJumps *nftables.Set
	postroutingFromJumps             *nftables.Set
	postroutingToJumps               *nftables.Set

	natPrerouting, natOutput, natPostrouting *nftables.Chain
	filterForward, rawPrerouting             *nftables.Chain
	natPublished                             *nftables.Chain
}

// portMapKey picks the DNAT map for a protocol and a host scope.
type portMapKey struct {
	proto string
	scope hostScope
}

func newNFTObjects() *nftObjects {
	t := &nftables.Table{Name: nftTable, Family: nftables.TableFamilyIPv4}
	o := &nftObjects{table: t, portMaps: map[portMapKey]*nftables.Set{}}
	// Interface names are strings: host byte order for nft's display.
	o.bridges = &nftables.Set{Table: t, Name: "bridges", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	for _, proto := range []string{"tcp", "udp"} {
		o.portMaps[portMapKey{proto, anyAddress}] = &nftables.Set{Table: t, Name: proto + "-any", IsMap: true,
			KeyType: nftables.TypeInetService, KeyByteOrder: binaryutil.BigEndian, DataType: addrPortType}
		o.portMaps[portMapKey{proto, specificAddress}] = &nftables.Set{Table: t, Name: proto + "-addr", IsMap: true, Concatenation: true,
			KeyType: addrPortType, KeyByteOrder: binaryutil.BigEndian, DataType: addrPortType}
		o.portMaps[portMapKey{proto, loopbackAddress}] = &nftables.Set{Table: t, Name: proto + "-loopback", IsMap: true, Concatenation: true,
			KeyType: addrPortType, KeyByteOrder: binaryutil.BigEndian, DataType: addrPortType}
	}
	o.loopbackOnly = &nftables.Set{Table: t, Name: "loopback-only", Concatenation: true,
		KeyType: addrProtoPortType, KeyByteOrder: binaryutil.BigEndian}
	vmap := func(name string) *nftables.Set {
		return &nftables.Set{Table: t, Name: name, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian, DataType: nftables.TypeVerdict}
	}
	o.forwardFromJumps = vmap("filter-forward-from-jumps")
	o.forwardToJumps = vmap("filter-forward-to-jumps")
	o.postroutingFromJumps = vmap("nat-postrouting-from-jumps")
	o.postroutingToJumps = vmap("nat-postrouting-to-jumps")

	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Table: t, Name: name, Type: typ, Hooknum: hook, Priority: prio}
	}
	o.natPrerouting = base("nat-PREROUTING", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, prioDstNAT)
	o.natOutput = base("nat-OUTPUT", nftables.ChainTypeNAT, nftables.ChainHookOutput, prioDstNAT)
	o.natPostrouting = base("nat-POSTROUTING", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, prioSrcNAT)
	o.filterForward = base("filter-FORWARD", nftables.ChainTypeFilter, nftables.ChainHookForward, prioFilter)
	o.rawPrerouting = base("raw-PREROUTING", nftables.ChainTypeFilter, nftables.ChainHookPrerouting, prioRaw)
	o.natPublished = &nftables.Chain{Table: t, Name: "nat-published"}
	return o
}

// sets lists every set and map, in creation order.
func (o *nftObjects) sets() []*nftables.Set {
	s := []*nftables.Set{o.bridges, o.loopbackOnly, o.forwardFromJumps, o.forwardToJumps, o.postroutingFromJumps, o.postroutingToJumps}
	for _, proto := range []string{"tcp", "udp"} {
		for _, scope := range []hostScope{anyAddress, specificAddress, loopbackAddress} {
			s = append(s, o.portMaps[portMapKey{proto, scope}])
		}
	}
	return s
}

// networkChains are the four chains that belong to network n.
type networkChains struct {
	forwardFrom, forwardTo, postroutingFrom, postroutingTo *nftables.Chain
}

func (o *nftObjects) networkChains(n Network) networkChains {
	c := func(prefix string) *nftables.Chain {
		return &nftables.Chain{Table: o.table, Name: prefix + "__" + n.Name}
	}
	return networkChains{
		forwardFrom:     c("filter-forward-from"),
		forwardTo:       c("filter-forward-to"),
		postroutingFrom: c("nat-postrouting-from"),
		postroutingTo:   c("nat-postrouting-to"),
	}
}

func (nc networkChains) all() []*nftables.Chain {
	return []*nftables.Chain{nc.forwardFrom, nc.forwardTo, nc.postroutingFrom, nc.postroutingTo}
}

// nftablesBackend talks to nf_tables over netlink in the calling thread's namespace.
type nftablesBackend struct{}

func newNFTables() *nftablesBackend { return &nftablesBackend{} }

func (b *nftablesBackend) Name() string { return "nftables" }

// conn opens a netlink connection; it is dialled on each Flush/Get from the
// calling thread, so it works on that thread's network namespace.
func (b *nftablesBackend) conn() (*nftables.Conn, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("firewall: nftables: %w", err)
	}
	return c, nil
}

// SetupNetwork (re)builds berth's table skeleton and the network's chains in
// one atomic batch. Every object is added without "exclusive", chains are
// flushed before their rules are added again, so a second call leaves the
// same single copy of everything (and repairs anything removed by hand).
func (b *nftablesBackend) SetupNetwork(n Network) error {
	if err := ValidateNetwork(n); err != nil {
		return err
	}
	unlock, err := lockNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	if err := setupNetworkBatch(c, n); err != nil {
		return fmt.Errorf("firewall: nftables: setting up network %q: %w", n.Name, err)
	}
	return nil
}

// setupNetworkBatch sends the skeleton and network n's chains and
// elements in one batch.
func setupNetworkBatch(c *nftables.Conn, n Network) error {
	o := newNFTObjects()
	if err := addSkeleton(c, o); err != nil {
		return err
	}
	if err := addNetwork(c, o, n); err != nil {
		return err
	}
	return c.Flush()
}

// nftBatch is the part of *nftables.Conn that builds berth's ruleset: a
// Conn queues the calls for the kernel, an nftPlan records them, so that
// Reconcile learns what the ruleset should hold from the very functions
// that write it.
type nftBatch interface {
	AddTable(*nftables.Table) *nftables.Table
	AddSet(*nftables.Set, []nftables.SetElement) error
	AddChain(*nftables.Chain) *nftables.Chain
	FlushChain(*nftables.Chain)
	AddRule(*nftables.Rule) *nftables.Rule
	SetAddElements(*nftables.Set, []nftables.SetElement) error
}

// addSkeleton queues the table, its sets and maps, and the base chains with
// their fixed rules.
func addSkeleton(c nftBatch, o *nftObjects) error {
	c.AddTable(o.table)
	for _, s := range o.sets() {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("adding set %s: %w", s.Name, err)
		}
	}
	for _, ch := range []*nftables.Chain{o.natPublished, o.natPrerouting, o.natOutput, o.natPostrouting, o.filterForward, o.rawPrerouting} {
		c.AddChain(ch)
		c.FlushChain(ch)
	}

	// nat-published: the DNAT of every published port, one lookup per map.
	for _, proto := range []string{"tcp", "udp"} {
		// A port published on one host address: key is destination address . port.
		addRule(c, o.natPublished, proto+" ports published on one host address",
			dnatByAddrPort(proto, o.portMaps[portMapKey{proto, specificAddress}])...)
		// A port published on every host address: key is the port alone.
		addRule(c, o.natPublished, proto+" ports published on every host address",
			dnatByPort(proto, o.portMaps[portMapKey{proto, anyAddress}])...)
	}
	// Other hosts' and sibling containers' connections to a local address may be for a published port.
	addRule(c, o.natPrerouting, "connections to a local address may be for a published port",
		concat(fibDaddrIsLocal(), jumpTo(o.natPublished.Name))...)
	// So may the host's own connections to its addresses, 127.0.0.1 included.
	addRule(c, o.natOutput, "the host's own connections to a published port",
		concat(fibDaddrIsLocal(), jumpTo(o.natPublished.Name))...)
	// Ports published on a loopback address: only here, for the host's own
	// connections, never in PREROUTING, where a neighbour routing 127.0.0.1 to
	// us would be DNAT'd before the martian check (moby#45610).
	for _, proto := range []string{"tcp", "udp"} {
		addRule(c, o.natOutput, proto+" ports published on loopback: the host only",
			dnatByAddrPort(proto, o.portMaps[portMapKey{proto, loopbackAddress}])...)
	}

	// nat-POSTROUTING: each network's masquerade rules, found by bridge name.
	addRule(c, o.natPostrouting, "from a berth bridge to elsewhere: outbound masquerade",
		vmapLookup(unix.NFT_META_IIFNAME, o.postroutingFromJumps)...)
	addRule(c, o.natPostrouting, "to a berth bridge: hairpin and loopback-client masquerade",
		vmapLookup(unix.NFT_META_OIFNAME, o.postroutingToJumps)...)

	// filter-FORWARD: a packet from a berth bridge always gets its verdict in
	// its network's chain (isolation first); only packets from other
	// interfaces reach the second lookup.
	addRule(c, o.filterForward, "from a berth bridge: its network decides",
		vmapLookup(unix.NFT_META_IIFNAME, o.forwardFromJumps)...)
	addRule(c, o.filterForward, "into a berth bridge from elsewhere: its network decides",
		vmapLookup(unix.NFT_META_OIFNAME, o.forwardToJumps)...)

	// raw-PREROUTING: a port published on loopback is not for a neighbour that
	// routes the container subnet through us: only a berth bridge may deliver
	// packets straight to it (another network's bridge is stopped by isolation).
	addRule(c, o.rawPrerouting, "loopback-published ports: only the bridge may reach the container directly",
		concat(
			ifnameNotIn(unix.NFT_META_IIFNAME, o.bridges),
			[]expr.Any{
				&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32x1},
				&expr.Payload{DestRegister: reg32x2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: reg1, SetName: o.loopbackOnly.Name, SetID: o.loopbackOnly.ID},
			},
			verdict(expr.VerdictDrop))...)
	return nil
}

// addNetwork queues network n's chains, their rules, and its map elements.
func addNetwork(c nftBatch, o *nftObjects, n Network) error {
	nc := o.networkChains(n)
	for _, ch := range nc.all() {
		c.AddChain(ch)
		c.FlushChain(ch)
	}
	br := n.Bridge

	// Forwarded packets that came in on the bridge. Every path ends in a verdict.
	// Containers of the network talk to each other freely.
	addRule(c, nc.forwardFrom, "between members", concat(ifnameIs(unix.NFT_META_OIFNAME, br), verdict(expr.VerdictAccept))...)
	// Isolation: nothing goes from one berth network into another.
	addRule(c, nc.forwardFrom, "isolated from other networks", concat(ifnameIn(unix.NFT_META_OIFNAME, o.bridges), verdict(expr.VerdictDrop))...)
	if n.Internal {
		// An internal network's packets never leave its bridge.
		addRule(c, nc.forwardFrom, "internal: nothing leaves", verdict(expr.VerdictDrop)...)
		// ...and nothing from elsewhere enters it.
		addRule(c, nc.forwardTo, "internal: nothing enters", verdict(expr.VerdictDrop)...)
	} else {
		// Containers may open connections out of the network.
		addRule(c, nc.forwardFrom, "outbound", verdict(expr.VerdictAccept)...)
		// Replies to connections the containers opened.
		addRule(c, nc.forwardTo, "replies", concat(ctStateIsReply(), verdict(expr.VerdictAccept))...)
		// Published ports: nat already DNAT'd them, so no per-container filter rule is needed.
		addRule(c, nc.forwardTo, "published ports", concat(ctStatusIsDNAT(), verdict(expr.VerdictAccept))...)

		// Outbound traffic leaves with the host's address.
		addRule(c, nc.postroutingFrom, "outbound masquerade",
			concat(ifnameIsNot(unix.NFT_META_OIFNAME, br), saddrIn(n.Subnet), masquerade())...)
		// Hairpin: a container reaching a sibling (or itself) through a published
		// port must get the reply back through the host, so the source becomes the
		// gateway. This rule is keyed on the output bridge, not the input one: a
		// packet routed back out of the interface it came in on reaches POSTROUTING
		// with no input interface (seen on Linux 6.x), so `iifname` would not match.
		addRule(c, nc.postroutingTo, "hairpin",
			concat(saddrIn(n.Subnet), ctStatusIsDNAT(), masquerade())...)
		// The host reaching a published port at 127.0.0.1: a 127/8 source cannot go out on a bridge.
		addRule(c, nc.postroutingTo, "host via loopback",
			concat(saddrIn(netip.MustParsePrefix("127.0.0.0/8")), masquerade())...)
	}

	key := []nftables.SetElement{{Key: ifname(br)}}
	if err := c.SetAddElements(o.bridges, key); err != nil {
		return err
	}
	for _, j := range []struct {
		vmap  *nftables.Set
		chain *nftables.Chain
	}{
		{o.forwardFromJumps, nc.forwardFrom},
		{o.forwardToJumps, nc.forwardTo},
		{o.postroutingFromJumps, nc.postroutingFrom},
		{o.postroutingToJumps, nc.postroutingTo},
	} {
		el := []nftables.SetElement{{Key: ifname(br), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: j.chain.Name}}}
		if err := c.SetAddElements(j.vmap, el); err != nil {
			return fmt.Errorf("adding %s to %s: %w", br, j.vmap.Name, err)
		}
	}
	return nil
}

// TeardownNetwork deletes the network's chains and elements, or the whole
// table when it is the last berth network.
func (b *nftablesBackend) TeardownNetwork(n Network) error {
	if err := ValidateNetwork(n); err != nil {
		return err
	}
	unlock, err := lockNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	o := newNFTObjects()
	exists, err := tableExists(c)
	if err != nil || !exists {
		return err
	}
	bridges, err := setMembers(c, o.bridges)
	if err != nil {
		return fmt.Errorf("firewall: nftables: tearing down network %q: %w", n.Name, err)
	}
	_, present := bridges[n.Bridge]
	delete(bridges, n.Bridge)
	switch {
	case len(bridges) == 0:
		// The last network: the table and everything in it goes, including
		// any port still published into this network.
		c.DelTable(o.table)
	case present:
		if err := deleteNetwork(c, o, n); err != nil {
			return fmt.Errorf("firewall: nftables: tearing down network %q: %w", n.Name, err)
		}
	default:
		return nil // already gone, and other networks remain
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: nftables: tearing down network %q: %w", n.Name, err)
	}
	return nil
}

// deleteNetwork queues the removal of n's elements and chains: elements
// first, as they reference the chains.
func deleteNetwork(c *nftables.Conn, o *nftObjects, n Network) error {
	key := []nftables.SetElement{{Key: ifname(n.Bridge)}}
	for _, s := range []*nftables.Set{o.bridges, o.forwardFromJumps, o.forwardToJumps, o.postroutingFromJumps, o.postroutingToJumps} {
		if err := c.SetDeleteElements(s, key); err != nil {
			return fmt.Errorf("removing %s from %s: %w", n.Bridge, s.Name, err)
		}
	}
	for _, ch := range o.networkChains(n).all() {
		c.FlushChain(ch)
		c.DelChain(ch)
	}
	return nil
}

// tableExists says whether the berth table is there.
func tableExists(c *nftables.Conn) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("firewall: nftables: listing tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == nftTable {
			return true, nil
		}
	}
	return false, nil
}

// setMembers returns the interface names in an ifname set.
func setMembers(c *nftables.Conn, s *nftables.Set) (map[string]struct{}, error) {
	elems, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("listing set %s: %w", s.Name, err)
	}
	names := make(map[string]struct{}, len(elems))
	for _, e := range elems {
		names[unix.ByteSliceToString(e.Key)] = struct{}{}
	}
	return names, nil
}

// portElements groups e's port mappings into elements per map, in a stable order.
func portElements(o *nftObjects, e Endpoint) []setElements {
	tag := containerTag(e.ContainerID)
	bySet := map[*nftables.Set][]nftables.SetElement{}
	guarded := map[string]bool{}
	for _, m := range e.Ports {
		scope := scopeOf(m)
		s := o.portMaps[portMapKey{m.Protocol, scope}]
		el := nftables.SetElement{Val: addrPort(e.Addr, m.ContainerPort), Comment: tag}
		if scope == anyAddress {
			el.Key = port(m.HostPort)
		} else {
			el.Key = addrPort(m.HostIP.Unmap(), m.HostPort)
		}
		bySet[s] = append(bySet[s], el)
		if scope == loopbackAddress {
			key := addrProtoPort(e.Addr, m.Protocol, m.ContainerPort)
			if !guarded[string(key)] { // one element per container port, however many loopback mappings use it
				guarded[string(key)] = true
				bySet[o.loopbackOnly] = append(bySet[o.loopbackOnly], nftables.SetElement{Key: key, Comment: tag})
			}
		}
	}
	out := make([]setElements, 0, len(bySet))
	for s, els := range bySet {
		out = append(out, setElements{s, els})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].set.Name < out[j].set.Name })
	return out
}

// setElements are elements to add to or delete from one set.
type setElements struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

// AddPorts adds the endpoint's map elements in one netlink batch. A host port
// that is already published (to anything else) makes the batch fail, and
// nothing of it is applied.
func (b *nftablesBackend) AddPorts(e Endpoint) error {
	if err := validatePublish(e); err != nil {
		return err
	}
	if len(e.Ports) == 0 {
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return err
	}
	unlock, err := lockNetworks() // see RemovePorts
	if err != nil {
		return err
	}
	for _, se := range portElements(newNFTObjects(), e) {
		if err := c.SetAddElements(se.set, se.elems); err != nil {
			unlock()
			return fmt.Errorf("firewall: nftables: publishing ports of %s: %w", e.ContainerID, err)
		}
	}
	err = c.Flush()
	unlock()
	if err != nil {
		return fmt.Errorf("firewall: nftables: publishing ports of %s (is a host port already published, or the network not set up?): %w", e.ContainerID, err)
	}
	return flushUDPConntrack(udpHostPorts(e))
}

// RemovePorts deletes the endpoint's map elements in one batch. A batch is
// all-or-nothing, so if it fails because some element is gone already, each
// element is retried alone and missing ones are skipped. Only elements that
// still map to this endpoint go: the kernel deletes by key (the host port),
// and the port may be another endpoint's, for example another berth-net
// root's (each root reserves ports in its own registry), when a setup that
// the firewall refused for that port is undone.
func (b *nftablesBackend) RemovePorts(e Endpoint) error {
	if err := validateEndpoint(e); err != nil {
		return err
	}
	if len(e.Ports) == 0 || e.Network.Internal { // nothing is ever published on an internal network
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return err
	}
	// The maps are read, then changed: under the network lock, which
	// AddPorts and Reconcile take too. A set dump that runs while another
	// process changes the set can skip elements (the kernel marks such a
	// dump interrupted, and google/nftables does not say so), and a
	// skipped element of ours would be left published.
	unlock, err := lockNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := stillMine(c, portElements(newNFTObjects(), e))
	if err != nil {
		return fmt.Errorf("firewall: nftables: unpublishing ports of %s: %w", e.ContainerID, err)
	}
	if len(all) == 0 {
		// None is ours any more: the ports' conntrack entries are the
		// holder's flows, and must stay.
		return nil
	}
	for _, se := range all {
		if err := c.SetDeleteElements(se.set, se.elems); err != nil {
			return fmt.Errorf("firewall: nftables: unpublishing ports of %s: %w", e.ContainerID, err)
		}
	}
	if err := c.Flush(); err != nil {
		if err := deleteElementsOneByOne(c, all); err != nil {
			return fmt.Errorf("firewall: nftables: unpublishing ports of %s: %w", e.ContainerID, err)
		}
	}
	return flushUDPConntrack(udpHostPorts(e))
}

// stillMine keeps, of the map elements in all, those whose key is in the
// kernel's map with the same data (the same container address and port).
// Elements of plain sets (loopback-only) are kept: their key holds the
// container's address, so they are the endpoint's alone.
func stillMine(c *nftables.Conn, all []setElements) ([]setElements, error) {
	var out []setElements
	for _, se := range all {
		if !se.set.IsMap {
			out = append(out, se)
			continue
		}
		current, err := c.GetSetElements(se.set)
		if err != nil {
			// google/nftables does not wrap the errno: ask whether the
			// table is there. Without it the map and its elements are gone.
			if exists, terr := tableExists(c); terr == nil && !exists {
				return nil, nil
			}
			return nil, fmt.Errorf("listing map %s: %w", se.set.Name, err)
		}
		data := make(map[string]string, len(current))
		for _, el := range current {
			data[string(el.Key)] = string(el.Val)
		}
		var mine []nftables.SetElement
		for _, el := range se.elems {
			if v, ok := data[string(el.Key)]; ok && v == string(el.Val) {
				mine = append(mine, el)
			}
		}
		if len(mine) > 0 {
			out = append(out, setElements{se.set, mine})
		}
	}
	return out, nil
}

// deleteElementsOneByOne is RemovePorts' slow path.
func deleteElementsOneByOne(c *nftables.Conn, all []setElements) error {
	for _, se := range all {
		for _, el := range se.elems {
			if err := c.SetDeleteElements(se.set, []nftables.SetElement{el}); err != nil {
				return err
			}
			if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("deleting from %s: %w", se.set.Name, err)
			}
		}
	}
	return nil
}

// --- rule building -----------------------------------------------------

// addRule queues a rule whose user data carries a comment (shown by
// `nft list ruleset`) saying why it exists.
func addRule(c nftBatch, ch *nftables.Chain, why string, exprs ...expr.Any) {
	c.AddRule(&nftables.Rule{
		Table:    ch.Table,
		Chain:    ch,
		Exprs:    exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, why),
	})
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}

func jumpTo(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

func masquerade() []expr.Any { return []expr.Any{&expr.Masq{}} }

// fibDaddrIsLocal: `fib daddr type local`, the nft twin of `-m addrtype --dst-type LOCAL`.
func fibDaddrIsLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ifnameIs: `iifname/oifname == name` (key is unix.NFT_META_IIFNAME or _OIFNAME).
func ifnameIs(key uint32, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)},
	}
}

// ifnameIsNot: `iifname/oifname != name`.
func ifnameIsNot(key uint32, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: reg1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: ifname(name)},
	}
}

// ifnameIn: `iifname/oifname @set`.
func ifnameIn(key uint32, s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID},
	}
}

// ifnameNotIn: `iifname/oifname != @set`.
func ifnameNotIn(key uint32, s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID, Invert: true},
	}
}

// vmapLookup: `iifname/oifname vmap @map`.
func vmapLookup(key uint32, vmap *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: reg1},
		&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: vmap.Name, SetID: vmap.ID},
	}
}

// saddrIn: `ip saddr <prefix>`.
func saddrIn(p netip.Prefix) []expr.Any {
	p = p.Masked()
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	net := p.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: net[:]},
	}
}

// ipsDstNAT is the conntrack status bit IPS_DST_NAT (linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// ctStatusIsDNAT: `ct status dnat`, the connection's destination was rewritten.
func ctStatusIsDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{0, 0, 0, 0}},
	}
}

// ctStateIsReply: `ct state established,related`.
func ctStateIsReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{0, 0, 0, 0}},
	}
}

// l4protoIs: `meta l4proto tcp|udp`.
func l4protoIs(proto string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{protoNumber(proto)}},
	}
}

// dnatByPort: `meta l4proto P dnat ip to P dport map @m`.
func dnatByPort(proto string, m *nftables.Set) []expr.Any {
	return concat(l4protoIs(proto), []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatFromRegisters(),
	})
}

// dnatByAddrPort: `meta l4proto P dnat ip to ip daddr . P dport map @m`.
func dnatByAddrPort(proto string, m *nftables.Set) []expr.Any {
	return concat(l4protoIs(proto), []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Payload{DestRegister: reg32x1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		dnatFromRegisters(),
	})
}

// dnatFromRegisters rewrites the destination to the map's data: the
// container address in the first word of reg 1, its port in the second.
func dnatFromRegisters() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg32x1, Specified: true}
}

// --- element encoding ----------------------------------------------------

// ifname is an interface name as nftables stores it: IFNAMSIZ bytes, NUL-padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// port is an inet_service: 2 bytes, network order.
func port(p uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, p)
}

// addrPort is `ipv4_addr . inet_service`; each part of a concatenation is
// padded to a 4-byte register word.
func addrPort(a netip.Addr, p uint16) []byte {
	ip := a.As4()
	return append(ip[:], byte(p>>8), byte(p), 0, 0)
}

// addrProtoPort is `ipv4_addr . inet_proto . inet_service`.
func addrProtoPort(a netip.Addr, proto string, p uint16) []byte {
	ip := a.As4()
	return append(ip[:], protoNumber(proto), 0, 0, 0, byte(p>>8), byte(p), 0, 0)
}

func protoNumber(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}
