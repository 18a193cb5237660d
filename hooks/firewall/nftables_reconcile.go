package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/drift"
)

// Reconcile compares the `ip berth` table with what addSkeleton,
// addNetwork and portElements would write for want: the table, its sets
// and chains, every rule (known by the comment each carries, in its
// chain), and every element. With repair it sends what is missing, in
// SetupNetwork's and AddPorts' batches: a network's chains are rebuilt
// whole (they are berth's alone), a container's missing elements are
// added, and the elements already there are left as they are.
func (b *nftablesBackend) Reconcile(want Desired, repair bool) ([]Drift, error) {
	unlock, run, err := beginReconcile(want)
	if err != nil || !run {
		return nil, err
	}
	defer unlock()
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	o := newNFTObjects()
	k, err := readNFTKernel(c, o)
	if err != nil {
		return nil, fmt.Errorf("firewall: nftables: reading table %s: %w", nftTable, err)
	}

	skeleton := newNFTPlan()
	if err := addSkeleton(skeleton, o); err != nil {
		return nil, err
	}
	missing, _, err := k.missing(skeleton, "")
	if err != nil {
		return nil, fmt.Errorf("firewall: nftables: checking table %s: %w", nftTable, err)
	}
	groups := []drift.Step{{Missing: missing, Restore: func() error {
		if err := addSkeleton(c, newNFTObjects()); err != nil {
			return err
		}
		return c.Flush()
	}}}

	for _, n := range want.Networks {
		p := newNFTPlan()
		if err := addNetwork(p, o, n); err != nil {
			return nil, err
		}
		missing, _, err := k.missing(p, ofNetwork(n))
		if err != nil {
			return nil, fmt.Errorf("firewall: nftables: checking network %q: %w", n.Name, err)
		}
		groups = append(groups, drift.Step{Missing: missing, Restore: func() error { return setupNetworkBatch(c, n) }})
	}
	for _, e := range want.Endpoints {
		p := newNFTPlan()
		p.elems = portElements(o, e)
		missing, absent, err := k.missing(p, ofContainer(e))
		if err != nil {
			return nil, fmt.Errorf("firewall: nftables: checking ports of %s: %w", e.ContainerID, err)
		}
		groups = append(groups, drift.Step{Missing: missing, Restore: func() error {
			for _, se := range absent {
				if err := c.SetAddElements(se.set, se.elems); err != nil {
					return err
				}
			}
			if err := c.Flush(); err != nil {
				return err
			}
			return flushUDPConntrack(udpHostPorts(e))
		}})
	}
	return drift.Settle(groups, repair, "fw.reconcile.restored"), nil
}

// nftPlan records what addSkeleton and addNetwork would send (see nftBatch).
type nftPlan struct {
	table  *nftables.Table
	sets   []*nftables.Set
	chains []*nftables.Chain
	rules  map[string][]string // chain name -> the comments of its rules, in order
	elems  []setElements
}

func newNFTPlan() *nftPlan { return &nftPlan{rules: map[string][]string{}} }

func (p *nftPlan) AddTable(t *nftables.Table) *nftables.Table { p.table = t; return t }

func (p *nftPlan) AddSet(s *nftables.Set, vals []nftables.SetElement) error {
	p.sets = append(p.sets, s)
	if len(vals) > 0 {
		p.elems = append(p.elems, setElements{s, vals})
	}
	return nil
}

func (p *nftPlan) AddChain(c *nftables.Chain) *nftables.Chain {
	p.chains = append(p.chains, c)
	return c
}

func (p *nftPlan) FlushChain(c *nftables.Chain) { p.rules[c.Name] = nil }

func (p *nftPlan) AddRule(r *nftables.Rule) *nftables.Rule {
	p.rules[r.Chain.Name] = append(p.rules[r.Chain.Name], ruleComment(r))
	return r
}

func (p *nftPlan) SetAddElements(s *nftables.Set, vals []nftables.SetElement) error {
	p.elems = append(p.elems, setElements{s, vals})
	return nil
}

func ruleComment(r *nftables.Rule) string {
	c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return c
}

// nftKernel is what the kernel holds of the berth table: read once, then
// the rules and elements of each chain and set when first asked for.
type nftKernel struct {
	c      *nftables.Conn
	table  *nftables.Table
	exists bool            // the table
	sets   map[string]bool // by name
	chains map[string]bool
	rules  map[string][]string // chain -> comments
	elems  map[string][]nftables.SetElement
}

func readNFTKernel(c *nftables.Conn, o *nftObjects) (*nftKernel, error) {
	k := &nftKernel{c: c, table: o.table, sets: map[string]bool{}, chains: map[string]bool{},
		rules: map[string][]string{}, elems: map[string][]nftables.SetElement{}}
	exists, err := tableExists(c)
	if err != nil || !exists {
		return k, err
	}
	k.exists = true
	sets, err := c.GetSets(o.table)
	if err != nil {
		return nil, fmt.Errorf("listing sets: %w", err)
	}
	for _, s := range sets {
		k.sets[s.Name] = true
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == nftTable {
			k.chains[ch.Name] = true
		}
	}
	return k, nil
}

func (k *nftKernel) ruleComments(chain *nftables.Chain) ([]string, error) {
	if got, ok := k.rules[chain.Name]; ok {
		return got, nil
	}
	rs, err := k.c.GetRules(k.table, chain)
	if err != nil {
		return nil, fmt.Errorf("listing rules of chain %s: %w", chain.Name, err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, ruleComment(r))
	}
	k.rules[chain.Name] = got
	return got, nil
}

func (k *nftKernel) setElements(s *nftables.Set) ([]nftables.SetElement, error) {
	if got, ok := k.elems[s.Name]; ok {
		return got, nil
	}
	got, err := k.c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("listing set %s: %w", s.Name, err)
	}
	k.elems[s.Name] = got
	return got, nil
}

// missing compares plan p with the kernel. It returns one line per missing
// object, each followed by whose, and the missing elements by set. A
// missing chain takes its rules with it, so they are not listed apart;
// rules are compared by their comments, as a multiset: berth's chains
// are rebuilt whole when one is missing, so order and extras do not drift.
func (k *nftKernel) missing(p *nftPlan, whose string) ([]string, []setElements, error) {
	var lines []string
	if p.table != nil && !k.exists {
		lines = append(lines, "nft add table ip "+nftTable+whose)
	}
	for _, s := range p.sets {
		if !k.sets[s.Name] {
			kind := "set"
			if s.IsMap {
				kind = "map"
			}
			lines = append(lines, fmt.Sprintf("nft add %s ip %s %s%s", kind, nftTable, s.Name, whose))
		}
	}
	for _, ch := range p.chains {
		if !k.chains[ch.Name] {
			lines = append(lines, fmt.Sprintf("nft add chain ip %s %s%s", nftTable, ch.Name, whose))
			continue
		}
		have, err := k.ruleComments(ch)
		if err != nil {
			return nil, nil, err
		}
		have = slices.Clone(have)
		for _, want := range p.rules[ch.Name] {
			if i := slices.Index(have, want); i >= 0 {
				have = slices.Delete(have, i, i+1)
				continue
			}
			lines = append(lines, fmt.Sprintf("nft add rule ip %s %s … comment %q%s", nftTable, ch.Name, want, whose))
		}
	}
	var absent []setElements
	for _, se := range p.elems {
		var have []nftables.SetElement
		if k.sets[se.set.Name] {
			var err error
			if have, err = k.setElements(se.set); err != nil {
				return nil, nil, err
			}
		}
		var gone []nftables.SetElement
		for _, el := range se.elems {
			if !slices.ContainsFunc(have, func(h nftables.SetElement) bool { return sameElement(h, el) }) {
				gone = append(gone, el)
				lines = append(lines, fmt.Sprintf("nft add element ip %s %s { %s }%s", nftTable, se.set.Name, describeElement(se.set, el), whose))
			}
		}
		if len(gone) > 0 {
			absent = append(absent, setElements{se.set, gone})
		}
	}
	return lines, absent, nil
}

// sameElement: same key and, for maps, the same data.
func sameElement(have, want nftables.SetElement) bool {
	if !bytes.Equal(have.Key, want.Key) {
		return false
	}
	if want.VerdictData != nil {
		v := have.VerdictData
		if v == nil {
			v = decodeVerdict(have.Val)
		}
		return v != nil && v.Kind == want.VerdictData.Kind && v.Chain == want.VerdictData.Chain
	}
	return bytes.Equal(have.Val, want.Val)
}

// describeElement writes an element as nft(8) does: bt-x, bt-x : jump C,
// 8080 : 10.88.0.2 . 80, 127.0.0.1 . 8081 : 10.88.0.2 . 80.
func describeElement(s *nftables.Set, el nftables.SetElement) string {
	text := decodeKey(s.KeyType, el.Key)
	switch {
	case el.VerdictData != nil && el.VerdictData.Kind == expr.VerdictJump:
		text += " : jump " + el.VerdictData.Chain
	case s.IsMap && s.DataType.Name == addrPortType.Name:
		text += " : " + decodeKey(s.DataType, el.Val)
	}
	return text
}

// decodeKey renders the key types berth's sets use.
func decodeKey(t nftables.SetDatatype, b []byte) string {
	switch {
	case t.Name == nftables.TypeIFName.Name:
		return unix.ByteSliceToString(b)
	case t.Name == nftables.TypeInetService.Name && len(b) == 2:
		return strconv.Itoa(int(binary.BigEndian.Uint16(b)))
	case t.Name == addrPortType.Name && len(b) == 8:
		a, _ := netip.AddrFromSlice(b[:4])
		return fmt.Sprintf("%s . %d", a, binary.BigEndian.Uint16(b[4:6]))
	case t.Name == addrProtoPortType.Name && len(b) == 12:
		a, _ := netip.AddrFromSlice(b[:4])
		proto := "tcp"
		if b[4] == unix.IPPROTO_UDP {
			proto = "udp"
		}
		return fmt.Sprintf("%s . %s . %d", a, proto, binary.BigEndian.Uint16(b[8:10]))
	}
	return fmt.Sprintf("0x%x", b)
}

// decodeVerdict reads the verdict of a vmap element. google/nftables hands
// it over undecoded, as the nested attributes NFTA_VERDICT_CODE (a
// big-endian int32) and NFTA_VERDICT_CHAIN (a NUL-terminated name).
func decodeVerdict(b []byte) *expr.Verdict {
	var v *expr.Verdict
	for len(b) >= unix.SizeofNlAttr {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < unix.SizeofNlAttr || n > len(b) {
			return nil
		}
		data := b[unix.SizeofNlAttr:n]
		if v == nil {
			v = &expr.Verdict{}
		}
		switch {
		case typ == unix.NFTA_VERDICT_CODE && len(data) == 4:
			v.Kind = expr.VerdictKind(int32(binary.BigEndian.Uint32(data)))
		case typ == unix.NFTA_VERDICT_CHAIN:
			v.Chain = unix.ByteSliceToString(data)
		}
		b = b[min((n+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
	return v
}
