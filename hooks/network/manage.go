package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/ipam"
	"github.com/berth-runtime/berth/hooks/netlinksafe"
	"github.com/berth-runtime/berth/hooks/ports"
	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/internal/statefile"
)

// Attached is a container on a network, as inspect shows it.
type Attached struct {
	ID       string             `json:"id"`
	Hostname string             `json:"hostname,omitempty"`
	Addr     netip.Addr         `json:"address"`
	HostVeth string             `json:"hostVeth"`
	Ports    []portspec.Mapping `json:"ports,omitempty"`
}

// Inspection is `berth network inspect`'s document.
type Inspection struct {
	Network
	Containers []Attached `json:"containers"`
}

// Inspect describes a network and the containers attached to it. It
// writes nothing: the default network, until defined, is shown as it
// would be defined now.
func (l Layout) Inspect(name string) (*Inspection, error) {
	n, err := l.ShowNetwork(name)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Network: *n, Containers: []Attached{}}
	recs, err := l.Records()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Mode == "bridge" && r.Network == name {
			in.Containers = append(in.Containers, Attached{ID: r.ID, Hostname: r.Hostname, Addr: r.Addr, HostVeth: r.HostVeth, Ports: r.Ports})
		}
	}
	return in, nil
}

// RemoveNetwork deletes a network with no containers: its bridge, its
// firewall rules, its leases and its definition.
func (l Layout) RemoveNetwork(name string) error {
	unlock, err := l.lockExclusive()
	if err != nil {
		return err
	}
	defer unlock()
	return l.removeNetworkLocked(name)
}

func (l Layout) removeNetworkLocked(name string) error {
	// The name builds the paths of the definition and of the leases removed
	// below: one such as ../../x must never get that far.
	if err := names.NetworkName(name); err != nil {
		return err
	}
	n, err := l.readNetwork(name)
	if errors.Is(err, os.ErrNotExist) {
		return errNoNetwork(name)
	}
	if err != nil {
		return err
	}
	recs, err := l.Records()
	if err != nil {
		return err
	}
	var attached []string
	for _, r := range recs {
		if r.Mode == "bridge" && r.Network == name {
			attached = append(attached, r.ID)
		}
	}
	if len(attached) > 0 {
		return errdefs.InUse(fmt.Errorf("network %q has containers attached: %v (delete them first)", name, attached))
	}
	// The bridge and the rules keyed on its name are this network's only if
	// the bridge is (or is gone): a bridge of that name that another root or
	// tool made stays, and so do its rules.
	unlockLinks, err := lockLinks()
	if err != nil {
		return err
	}
	defer unlockLinks()
	own, err := l.ownsBridgeOrNone(n)
	if err != nil {
		return err
	}
	if own {
		if err := deleteLink(n.Bridge); err != nil {
			return err
		}
		fw, err := firewall.New(n.Firewall)
		if err != nil {
			return err
		}
		if err := fw.TeardownNetwork(n.firewallNetwork()); err != nil {
			return err // names the network
		}
	}
	if err := os.RemoveAll(l.ipamDir(name)); err != nil {
		return fmt.Errorf("network %s: remove leases: %w", name, err)
	}
	return statefile.Remove(l.networkFile(name))
}

// networksAndRecords reads every network definition and container record;
// the caller holds the root lock, so no network comes or goes meanwhile.
func (l Layout) networksAndRecords() ([]Network, []Record, error) {
	nets, err := l.listNetworks()
	if err != nil {
		return nil, nil, err
	}
	recs, err := l.Records()
	if err != nil {
		return nil, nil, err
	}
	return nets, recs, nil
}

// Prune removes every network without containers and returns their names.
func (l Layout) Prune() ([]string, error) {
	unlock, err := l.lockExclusive()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, recs, err := l.networksAndRecords()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, r := range recs {
		used[r.Network] = true
	}
	var removed []string
	for _, n := range nets {
		if used[n.Name] {
			continue
		}
		if err := l.removeNetworkLocked(n.Name); err != nil {
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// GCReport says what gc released.
type GCReport struct {
	Containers []string `json:"containers"` // records torn down
	Leases     []string `json:"leases"`     // leases without a record
	Ports      []string `json:"ports"`      // port reservations without a record
	Links      []string `json:"links"`      // veths without a record
	Debris     []string `json:"debris"`     // temporary files of writers that died
}

// GC releases everything whose container no longer runs: records whose
// init is gone, then leases, port reservations and veths that no record
// names (what a crash between acquiring them and writing the record
// leaves). Safe at any time and twice: a running container's record, and
// what it names, are left alone.
func (l Layout) GC() (*GCReport, error) {
	rep := &GCReport{Containers: []string{}, Leases: []string{}, Ports: []string{}, Links: []string{}, Debris: []string{}}
	recs, err := l.Records()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	liveLinks := map[string]bool{}
	var errs []error
	for _, r := range recs {
		if r.running() {
			live[r.ID] = true
			liveLinks[r.HostVeth] = true
			continue
		}
		if err := l.Teardown(r.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Containers = append(rep.Containers, r.ID)
	}
	nets, err := l.listNetworks()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		pool, err := ipam.Open(l.ipamDir(n.Name), n.Subnet, n.Gateway)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		leases, err := pool.Leases()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for addr, owner := range leases {
			if live[owner] {
				continue
			}
			if _, err := l.LoadRecord(owner); !errors.Is(err, os.ErrNotExist) {
				continue // a setup in progress has written its record (or it cannot be read: nothing proves the owner dead)
			}
			if err := pool.Release(owner); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Leases = append(rep.Leases, n.Name+"/"+addr.String()+" ("+owner+")")
		}
	}
	if reg, err := ports.Open(l.portsDir()); err != nil {
		errs = append(errs, err)
	} else if held, err := reg.Held(); err != nil {
		errs = append(errs, err)
	} else {
		for owner, ms := range held {
			if live[owner] {
				continue
			}
			if _, err := l.LoadRecord(owner); !errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err := reg.Release(owner); err != nil {
				errs = append(errs, err)
				continue
			}
			for _, m := range ms {
				rep.Ports = append(rep.Ports, m.String()+" ("+owner+")")
			}
		}
	}
	// Our veth ends are named bt<hash> and marked as this root's (owner.go).
	// Those no record names are left by a crash between the kernel's and the
	// record's work; the records are read after the links, so that a veth
	// made meanwhile by a setup (record first) is named. If they cannot be
	// read, nothing proves a veth dead: the sweep stops.
	if err := l.sweepVeths(rep); err != nil {
		errs = append(errs, err)
	}
	// A record or definition whose writer died between writing it and
	// renaming it into place: the half-made state of a crash, never read.
	for _, dir := range []string{l.recordsDir(), l.networksDir()} {
		removed, err := statefile.RemoveDebris(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove debris in %s: %w", dir, err))
		}
		rep.Debris = append(rep.Debris, removed...)
	}
	return rep, errors.Join(errs...)
}

// sweepVeths deletes this root's veths that no record names.
func (l Layout) sweepVeths(rep *GCReport) error {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return err
	}
	recs, err := l.Records()
	if err != nil {
		return fmt.Errorf("veths not swept: %w", err)
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[r.HostVeth] = true
	}
	var errs []error
	for _, link := range links {
		name := link.Attrs().Name
		if known[name] || !isBerthVeth(name) {
			continue
		}
		own, err := l.ownsVeth(link)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !own {
			continue // another root's, or made by hand
		}
		if err := deleteLink(name); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Links = append(rep.Links, name)
	}
	return errors.Join(errs...)
}

func isBerthVeth(name string) bool {
	if len(name) != 13 || name[:2] != "bt" {
		return false
	}
	for _, c := range name[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
