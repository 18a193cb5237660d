package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/ipam"
	"github.com/berth-runtime/berth/hooks/ports"
	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/crashpoint"
)

// Teardown undoes everything the container's record names, in the reverse
// order of setup, and then forgets the record. Whatever is already gone is
// skipped, so it is safe after a crash, without the container's namespace,
// and twice in a row. A container without a record has nothing to undo.
func (l Layout) Teardown(id string) error {
	unlock, err := l.lockContainers(unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := l.LoadRecord(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if rec.Mode == "bridge" {
		errs = append(errs, l.releaseBridge(rec)...)
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the record: gc can try again.
		return fmt.Errorf("teardown %s: %w", id, err)
	}
	return l.removeRecord(id)
}

func (l Layout) releaseBridge(rec *Record) []error {
	var errs []error
	// Without its network's definition (removed since), the network's
	// rules and leases went with it; only links and ports are left.
	n, err := l.readNetwork(rec.Network)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	reg, err := ports.Open(l.portsDir())
	if err != nil {
		return append(errs, err)
	}
	if n != nil && len(rec.Ports) > 0 && rec.Addr.IsValid() {
		err := l.unpublish(rec, n, reg)
		if err != nil {
			errs = append(errs, fmt.Errorf("unpublish ports: %w", err))
		}
		crashpoint.Hit("net.teardown.unpublish")
	}
	// Deleting our end of the veth pair deletes the container's end too.
	// Only our own: another root's container of the same id has a veth of
	// the same name, and a setup that failed on that name comes here.
	if rec.HostVeth != "" {
		if err := l.deleteOwnVeth(rec.HostVeth); err != nil {
			errs = append(errs, err)
		}
	}
	crashpoint.Hit("net.teardown.veth")
	if err := reg.Release(rec.ID); err != nil {
		errs = append(errs, err)
	}
	crashpoint.Hit("net.teardown.ports")
	if n != nil {
		if pool, err := ipam.Open(l.ipamDir(n.Name), n.Subnet, n.Gateway); err != nil {
			errs = append(errs, err)
		} else if err := pool.Release(rec.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// unpublish removes the forwarding rules of the host ports the container
// holds in the port registry. Setup reserves a port before it adds the
// rule, so a port the container does not hold (setup failed on it because
// another container has it) never had a rule of this container's: its
// rule is the holder's and must stay.
func (l Layout) unpublish(rec *Record, n *Network, reg *ports.Registry) error {
	mine, err := heldMappings(reg, rec)
	if err != nil {
		return err
	}
	if len(mine) == 0 {
		return nil
	}
	fw, err := firewall.New(rec.Firewall)
	if err != nil {
		return err
	}
	return fw.RemovePorts(firewall.Endpoint{ContainerID: rec.ID, Network: n.firewallNetwork(), Addr: rec.Addr, Ports: mine})
}

// samePort reports whether two mappings publish the same host port; the
// registry spells the wildcard address as the zero Addr.
func samePort(a, b portspec.Mapping) bool {
	wild := func(ip netip.Addr) netip.Addr {
		if ip.IsUnspecified() {
			return netip.Addr{}
		}
		return ip
	}
	return a.Protocol == b.Protocol && a.HostPort == b.HostPort &&
		a.ContainerPort == b.ContainerPort && wild(a.HostIP) == wild(b.HostIP)
}
