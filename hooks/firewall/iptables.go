package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/berth-runtime/berth/internal/crashpoint"
)

// berth's iptables chains. Everything berth adds lives in these chains except
// the jumps into them from the built-in chains.
const (
	chainDNAT         = "BERTH-DNAT"          // nat: published ports, jumped to from PREROUTING and OUTPUT
	chainDNATLoopback = "BERTH-DNAT-LOOPBACK" // nat: ports published on 127.0.0.0/8, jumped to from OUTPUT only
	chainPostrouting  = "BERTH-POSTROUTING"   // nat: masquerades, jumped to from POSTROUTING
	chainForward      = "BERTH-FORWARD"       // filter: what the networks may forward, jumped to from FORWARD
	chainIsolation1   = "BERTH-ISOLATION-1"   // filter: traffic leaving a berth bridge
	chainIsolation2   = "BERTH-ISOLATION-2"   // filter: ... and entering another one: dropped
	chainRaw          = "BERTH-RAW"           // raw: guards ports published on loopback
)

// iptRule is one rule: table, chain, and the match/target arguments.
type iptRule struct {
	table, chain string
	spec         []string
}

// jump is a rule in a built-in chain that sends packets to a berth chain.
type jump struct {
	iptRule
	first bool // insert at position 1 instead of appending
}

// berthChains lists berth's chains per table, in the order they must be
// deleted (a chain that jumps to another comes before it).
var berthChains = []struct{ table, chain string }{
	{"nat", chainDNAT},
	{"nat", chainDNATLoopback},
	{"nat", chainPostrouting},
	{"filter", chainForward},
	{"filter", chainIsolation1},
	{"filter", chainIsolation2},
	{"raw", chainRaw},
}

// berthJumps are the rules berth puts into built-in chains.
var berthJumps = []jump{
	// Connections to any local address (other hosts' traffic) may be for a published port.
	{iptRule: iptRule{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT}}},
	// ...and so may the host's own connections to its addresses, 127.0.0.1 included.
	{iptRule: iptRule{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT}}},
	// Ports published on loopback exist only for the host's own connections: OUTPUT, never PREROUTING.
	{iptRule: iptRule{"nat", "OUTPUT", []string{"-d", "127.0.0.0/8", "-j", chainDNATLoopback}}},
	// Masquerading for outbound, hairpin and loopback-client traffic.
	{iptRule: iptRule{"nat", "POSTROUTING", []string{"-j", chainPostrouting}}},
	// First in FORWARD, so isolation is decided before any other accept rule sees the packet.
	{iptRule: iptRule{"filter", "FORWARD", []string{"-j", chainForward}}, first: true},
	// Direct (routed) access to loopback-only ports is dropped before conntrack.
	{iptRule: iptRule{"raw", "PREROUTING", []string{"-j", chainRaw}}},
}

// isolationJump is BERTH-FORWARD's first rule: every packet goes through the
// isolation chains before a network's accept rules can let it through.
var isolationJump = iptRule{"filter", chainForward, []string{"-j", chainIsolation1}}

// iptablesBackend drives iptables (nf_tables or legacy, whichever the binary is).
type iptablesBackend struct {
	ipt     *iptables.IPTables
	restore string // the iptables-restore matching ipt's binary
}

// newIPTables uses the iptables binary bin ("iptables", "iptables-legacy",
// "iptables-nft") and the iptables-restore of the same flavour.
func newIPTables(bin string) (*iptablesBackend, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("firewall: iptables backend: %w", err)
	}
	ipt, err := iptables.New(iptables.Path(path), iptables.Timeout(int(opTimeout.Seconds())))
	if err != nil {
		return nil, fmt.Errorf("firewall: iptables backend: %w", err)
	}
	// iptables -> iptables-restore, iptables-legacy -> iptables-legacy-restore:
	// the Debian alternatives keep each pair in the same flavour.
	restore := path + "-restore"
	if _, err := os.Stat(restore); err != nil {
		return nil, fmt.Errorf("firewall: iptables backend: %w", err)
	}
	return &iptablesBackend{ipt: ipt, restore: restore}, nil
}

func (b *iptablesBackend) Name() string { return "iptables" }

// networkRuleSet collects a network's rules; every rule carries an iptables
// comment naming the network and saying why it exists, for iptables-save readers.
type networkRuleSet struct {
	n     Network
	rules []iptRule
}

// add appends `match -m comment --comment "berth <net>: why" -j target`.
func (s *networkRuleSet) add(table, chain, why, target string, match ...string) {
	spec := append([]string{}, match...)
	spec = append(spec, "-m", "comment", "--comment", "berth "+s.n.Name+": "+why)
	spec = append(spec, "-j", target)
	s.rules = append(s.rules, iptRule{table, chain, spec})
}

// networkRules are the rules one network adds to berth's chains, in order.
func networkRules(n Network) []iptRule {
	br, subnet := n.Bridge, n.Subnet.Masked().String()
	s := &networkRuleSet{n: n}
	if n.Internal {
		// An internal network's packets never leave its bridge...
		s.add("filter", chainIsolation1, "internal: nothing leaves", "DROP", "-i", br, "!", "-o", br)
		// ...and nothing from elsewhere enters it.
		s.add("filter", chainIsolation1, "internal: nothing enters", "DROP", "!", "-i", br, "-o", br)
	} else {
		// Isolation stage 1: a packet leaving this network goes to stage 2...
		s.add("filter", chainIsolation1, "leaving the network", chainIsolation2, "-i", br, "!", "-o", br)
	}
	// ...stage 2 drops it if it enters another berth network, such as this one.
	// Every network has exactly this one rule here, so the chain's length is
	// the number of networks (TeardownNetwork counts it).
	s.add("filter", chainIsolation2, "isolated from other networks", "DROP", "-o", br)
	// Containers of the network talk to each other freely.
	s.add("filter", chainForward, "between members", "ACCEPT", "-i", br, "-o", br)
	if n.Internal {
		return s.rules
	}
	// Replies to connections the containers opened.
	s.add("filter", chainForward, "replies", "ACCEPT", "-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED")
	// Published ports: nat already DNAT'd them, so no per-container filter rule is needed.
	s.add("filter", chainForward, "published ports", "ACCEPT", "-o", br, "-m", "conntrack", "--ctstate", "DNAT")
	// Containers may open connections out of the network.
	s.add("filter", chainForward, "outbound", "ACCEPT", "-i", br, "!", "-o", br)
	// Outbound traffic leaves with the host's address.
	s.add("nat", chainPostrouting, "outbound masquerade", "MASQUERADE", "-s", subnet, "!", "-o", br)
	// Hairpin: a container reaching a sibling (or itself) through a published
	// port must get the reply back through the host, so the source becomes the gateway.
	s.add("nat", chainPostrouting, "hairpin", "MASQUERADE", "-s", subnet, "-o", br, "-m", "conntrack", "--ctstate", "DNAT")
	// The host reaching a published port at 127.0.0.1: a 127/8 source cannot go out on a bridge.
	s.add("nat", chainPostrouting, "host via loopback", "MASQUERADE", "-s", "127.0.0.0/8", "-o", br)
	return s.rules
}

// portRules are the rules publishing e's ports.
func portRules(e Endpoint) []iptRule {
	tag := containerTag(e.ContainerID)
	var rules []iptRule
	for _, m := range e.Ports {
		port := fmt.Sprint(m.HostPort)
		dnat := []string{"-p", m.Protocol, "-m", m.Protocol, "--dport", port,
			"-m", "comment", "--comment", tag,
			"-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", e.Addr, m.ContainerPort)}
		switch scopeOf(m) {
		case anyAddress:
			// Any local destination address (the chain is only reached for those).
			rules = append(rules, iptRule{"nat", chainDNAT, dnat})
		case specificAddress:
			// Only connections to the address the port was published on.
			rules = append(rules, iptRule{"nat", chainDNAT, append([]string{"-d", m.HostIP.Unmap().String() + "/32"}, dnat...)})
		case loopbackAddress:
			// Only the host's own connections: this chain is not reached from PREROUTING.
			rules = append(rules, iptRule{"nat", chainDNATLoopback, append([]string{"-d", m.HostIP.Unmap().String() + "/32"}, dnat...)})
			// A neighbour routing the container subnet through this host must not
			// reach the port directly either: only the bridge may deliver to it.
			rules = append(rules, iptRule{"raw", chainRaw, []string{
				"-d", e.Addr.String() + "/32", "!", "-i", e.Network.Bridge,
				"-p", m.Protocol, "-m", m.Protocol, "--dport", fmt.Sprint(m.ContainerPort),
				"-m", "comment", "--comment", tag, "-j", "DROP"}})
		}
	}
	return rules
}

// SetupNetwork creates berth's chains and jumps if needed, then appends the
// network's rules that are not there yet.
func (b *iptablesBackend) SetupNetwork(n Network) error {
	if err := ValidateNetwork(n); err != nil {
		return err
	}
	unlock, err := lockNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	if err := b.ensureSkeleton(); err != nil {
		return fmt.Errorf("firewall: iptables: setting up network %q: %w", n.Name, err)
	}
	if err := b.appendNetworkRules(n); err != nil {
		return fmt.Errorf("firewall: iptables: setting up network %q: %w", n.Name, err)
	}
	return nil
}

// appendNetworkRules appends those of the network's rules that are not
// there yet.
func (b *iptablesBackend) appendNetworkRules(n Network) error {
	for i, r := range networkRules(n) {
		if err := b.ipt.AppendUnique(r.table, r.chain, r.spec...); err != nil {
			return err
		}
		// Each rule is a separate iptables run, so a crash can leave any
		// prefix of the network's rules: the crash tests stop after each.
		if crashpoint.Enabled {
			crashpoint.Hit("fw.iptables.network-rule." + strconv.Itoa(i))
		}
	}
	return nil
}

// ensureSkeleton creates berth's chains, BERTH-FORWARD's isolation jump, and
// the jumps from the built-in chains, skipping whatever already exists.
func (b *iptablesBackend) ensureSkeleton() error {
	for _, c := range berthChains {
		if err := b.ensureChain(c.table, c.chain); err != nil {
			return err
		}
	}
	// Chains without the jumps into them: dead, but berth's to remove.
	crashpoint.Hit("fw.iptables.chains")
	if err := b.ensureFirst(isolationJump); err != nil {
		return err
	}
	for _, j := range berthJumps {
		var err error
		if j.first {
			err = b.ensureFirst(j.iptRule)
		} else {
			err = b.ipt.AppendUnique(j.table, j.chain, j.spec...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureChain creates a chain unless it exists.
func (b *iptablesBackend) ensureChain(table, chain string) error {
	err := b.ipt.NewChain(table, chain)
	if err == nil {
		return nil
	}
	if exists, err2 := b.ipt.ChainExists(table, chain); err2 == nil && exists {
		return nil
	}
	return fmt.Errorf("creating chain %s/%s: %w", table, chain, err)
}

// ensureFirst inserts r at the top of its chain unless it is already there
// somewhere (berth never reorders a chain it does not own).
func (b *iptablesBackend) ensureFirst(r iptRule) error {
	exists, err := b.ipt.Exists(r.table, r.chain, r.spec...)
	if err != nil {
		return fmt.Errorf("checking %s/%s: %w", r.table, r.chain, err)
	}
	if exists {
		return nil
	}
	if err := b.ipt.Insert(r.table, r.chain, 1, r.spec...); err != nil {
		return fmt.Errorf("inserting into %s/%s: %w", r.table, r.chain, err)
	}
	return nil
}

// TeardownNetwork deletes the network's rules; if it was the last berth
// network, it also removes the jumps and berth's chains.
func (b *iptablesBackend) TeardownNetwork(n Network) error {
	if err := ValidateNetwork(n); err != nil {
		return err
	}
	unlock, err := lockNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	for _, r := range networkRules(n) {
		if err := b.deleteIfExists(r); err != nil {
			return fmt.Errorf("firewall: iptables: tearing down network %q: %w", n.Name, err)
		}
	}
	left, err := b.networkCount()
	if err != nil {
		return fmt.Errorf("firewall: iptables: tearing down network %q: %w", n.Name, err)
	}
	if left > 0 {
		return nil
	}
	if err := b.removeSkeleton(); err != nil {
		return fmt.Errorf("firewall: iptables: removing berth's chains after network %q: %w", n.Name, err)
	}
	return nil
}

// deleteIfExists deletes r if it is there; a missing chain counts as absent.
func (b *iptablesBackend) deleteIfExists(r iptRule) error {
	exists, err := b.ipt.Exists(r.table, r.chain, r.spec...)
	if err != nil {
		var ierr *iptables.Error
		if errors.As(err, &ierr) && ierr.IsNotExist() {
			return nil
		}
		return fmt.Errorf("checking rule in %s/%s: %w", r.table, r.chain, err)
	}
	if !exists {
		return nil
	}
	if err := b.ipt.Delete(r.table, r.chain, r.spec...); err != nil {
		return fmt.Errorf("deleting rule from %s/%s: %w", r.table, r.chain, err)
	}
	return nil
}

// networkCount is the number of berth networks set up: each has exactly one
// rule in BERTH-ISOLATION-2.
func (b *iptablesBackend) networkCount() (int, error) {
	exists, err := b.ipt.ChainExists("filter", chainIsolation2)
	if err != nil || !exists {
		return 0, err
	}
	rules, err := b.ipt.List("filter", chainIsolation2)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", chainIsolation2, err)
	}
	count := 0
	for _, r := range rules {
		if strings.HasPrefix(r, "-A ") {
			count++
		}
	}
	return count, nil
}

// removeSkeleton deletes the jumps into berth's chains, then the chains
// (flushing first: ports still published when the last network goes are
// dropped with them).
func (b *iptablesBackend) removeSkeleton() error {
	for _, j := range berthJumps {
		if err := b.deleteIfExists(j.iptRule); err != nil {
			return err
		}
	}
	for _, c := range berthChains {
		if err := b.ipt.ClearAndDeleteChain(c.table, c.chain); err != nil {
			return fmt.Errorf("flushing %s/%s: %w", c.table, c.chain, err)
		}
	}
	return nil
}

// AddPorts appends the endpoint's DNAT (and loopback guard) rules in one
// iptables-restore --noflush run.
func (b *iptablesBackend) AddPorts(e Endpoint) error {
	if err := validatePublish(e); err != nil {
		return err
	}
	rules := portRules(e)
	if len(rules) == 0 {
		return nil
	}
	if err := b.restoreRules("-A", rules); err != nil {
		return fmt.Errorf("firewall: iptables: publishing ports of %s: %w", e.ContainerID, err)
	}
	return flushUDPConntrack(udpHostPorts(e))
}

// RemovePorts deletes the endpoint's rules in one iptables-restore run. If
// that fails because some are gone already (a retry, or the network's chains
// were removed), it falls back to deleting them one at a time, skipping the
// missing ones: the slow path only runs when something was already amiss.
func (b *iptablesBackend) RemovePorts(e Endpoint) error {
	if err := validateEndpoint(e); err != nil {
		return err
	}
	rules := portRules(e)
	if len(rules) == 0 || e.Network.Internal { // nothing is ever published on an internal network
		return nil
	}
	if err := b.restoreRules("-D", rules); err != nil {
		for _, r := range rules {
			if err := b.deleteIfExists(r); err != nil {
				return fmt.Errorf("firewall: iptables: unpublishing ports of %s: %w", e.ContainerID, err)
			}
		}
	}
	return flushUDPConntrack(udpHostPorts(e))
}

// restoreRules runs `iptables-restore --noflush -w` once with `op` ("-A" or
// "-D") applied to every rule. The whole input is one transaction per table.
func (b *iptablesBackend) restoreRules(op string, rules []iptRule) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.restore, "--noflush", "-w")
	cmd.Stdin = strings.NewReader(restoreInput(op, rules))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", b.restore, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// restoreInput renders rules in iptables-restore's format, one *table
// section per table. Rule arguments never contain blanks (comments are
// containerTag), so they need no quoting.
func restoreInput(op string, rules []iptRule) string {
	var sb strings.Builder
	for _, table := range []string{"nat", "filter", "raw"} {
		started := false
		for _, r := range rules {
			if r.table != table {
				continue
			}
			if !started {
				fmt.Fprintf(&sb, "*%s\n", table)
				started = true
			}
			fmt.Fprintf(&sb, "%s %s %s\n", op, r.chain, strings.Join(r.spec, " "))
		}
		if started {
			sb.WriteString("COMMIT\n")
		}
	}
	return sb.String()
}
