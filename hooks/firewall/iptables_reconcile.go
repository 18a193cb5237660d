package firewall

import (
	"fmt"
	"slices"

	"github.com/berth-runtime/berth/hooks/drift"
)

// Reconcile finds berth's chains, the jumps into them, the networks' rules
// and the containers' port rules that the kernel lacks, asking `iptables
// -C` for each rule (the kernel's own comparison: a rule that differs in
// any match counts as missing), and with repair adds exactly those, each
// where setup would put it. Rules of others, and the order of chains berth
// does not own, are never touched.
func (b *iptablesBackend) Reconcile(want Desired, repair bool) ([]Drift, error) {
	unlock, run, err := beginReconcile(want)
	if err != nil || !run {
		return nil, err
	}
	defer unlock()

	chains, err := b.berthChainsPresent()
	if err != nil {
		return nil, fmt.Errorf("firewall: iptables: checking berth's chains: %w", err)
	}
	var skeleton []string
	for _, c := range berthChains {
		if !chains[c.table+"/"+c.chain] {
			skeleton = append(skeleton, fmt.Sprintf("iptables -t %s -N %s", c.table, c.chain))
		}
	}
	jumps := []jump{{iptRule: isolationJump, first: true}}
	jumps = append(jumps, berthJumps...)
	for _, j := range jumps {
		ok, err := b.ruleExists(j.iptRule, chains)
		if err != nil {
			return nil, fmt.Errorf("firewall: iptables: checking berth's jumps: %w", err)
		}
		if !ok {
			skeleton = append(skeleton, j.String())
		}
	}
	groups := []drift.Step{{Missing: skeleton, Restore: b.ensureSkeleton}}

	for _, n := range want.Networks {
		missing, err := b.missingRules(networkRules(n), chains)
		if err != nil {
			return nil, fmt.Errorf("firewall: iptables: checking network %q: %w", n.Name, err)
		}
		groups = append(groups, drift.Step{
			Missing: describeRules(missing, ofNetwork(n)),
			Restore: func() error { return b.appendNetworkRules(n) },
		})
	}
	for _, e := range want.Endpoints {
		missing, err := b.missingRules(portRules(e), chains)
		if err != nil {
			return nil, fmt.Errorf("firewall: iptables: checking ports of %s: %w", e.ContainerID, err)
		}
		groups = append(groups, drift.Step{
			Missing: describeRules(missing, ofContainer(e)),
			Restore: func() error {
				// One iptables-restore run, as AddPorts: only the missing
				// rules, so nothing is doubled.
				if err := b.restoreRules("-A", missing); err != nil {
					return err
				}
				return flushUDPConntrack(udpHostPorts(e))
			},
		})
	}
	return drift.Settle(groups, repair, "fw.reconcile.restored"), nil
}

// berthChainsPresent says which of berth's chains exist, keyed table/chain:
// one `iptables -S` per table.
func (b *iptablesBackend) berthChainsPresent() (map[string]bool, error) {
	present := map[string]bool{}
	listed := map[string][]string{}
	for _, c := range berthChains {
		names, ok := listed[c.table]
		if !ok {
			var err error
			if names, err = b.ipt.ListChains(c.table); err != nil {
				return nil, fmt.Errorf("listing chains of table %s: %w", c.table, err)
			}
			listed[c.table] = names
		}
		present[c.table+"/"+c.chain] = slices.Contains(names, c.chain)
	}
	return present, nil
}

// missingRules lists the rules of rs that the kernel lacks.
func (b *iptablesBackend) missingRules(rs []iptRule, chains map[string]bool) ([]iptRule, error) {
	var missing []iptRule
	for _, r := range rs {
		ok, err := b.ruleExists(r, chains)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

// ruleExists asks `iptables -C` about r, unless r's chain or the berth
// chain it jumps to is missing: then r is too, and iptables would only
// fail to load it.
func (b *iptablesBackend) ruleExists(r iptRule, chains map[string]bool) (bool, error) {
	for _, c := range []string{r.chain, r.target()} {
		if present, berths := chains[r.table+"/"+c]; berths && !present {
			return false, nil
		}
	}
	ok, err := b.ipt.Exists(r.table, r.chain, r.spec...)
	if err != nil {
		return false, fmt.Errorf("checking rule in %s/%s: %w", r.table, r.chain, err)
	}
	return ok, nil
}

// target is the chain or target after the rule's -j.
func (r iptRule) target() string {
	if i := slices.Index(r.spec, "-j"); i >= 0 && i+1 < len(r.spec) {
		return r.spec[i+1]
	}
	return ""
}

// String is the iptables command that adds r.
func (r iptRule) String() string {
	return fmt.Sprintf("iptables -t %s -A %s %s", r.table, r.chain, quoteArgs(r.spec))
}

// String is the iptables command that adds j where setup puts it.
func (j jump) String() string {
	if j.first {
		return fmt.Sprintf("iptables -t %s -I %s 1 %s", j.table, j.chain, quoteArgs(j.spec))
	}
	return j.iptRule.String()
}

// describeRules is the drift lines of rs, each followed by whose.
func describeRules(rs []iptRule, whose string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String() + whose
	}
	return out
}
