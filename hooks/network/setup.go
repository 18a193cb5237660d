package network

import (
	"fmt"
	"net/netip"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/ipam"
	"github.com/berth-runtime/berth/hooks/ports"
	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/internal/process"
)

// Setup gives the container described by st its network. On failure it
// undoes what it made before returning, so nothing is left half-made.
func (l Layout) Setup(st *specs.State, o SetupOptions) (retErr error) {
	if err := names.ContainerID(st.ID); err != nil {
		return err
	}
	unlock, err := l.lockContainers(unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	maps, err := o.check()
	if err != nil {
		return err
	}
	if _, err := l.LoadRecord(st.ID); err == nil {
		return errdefs.AlreadyExists(fmt.Errorf("container %s: already has a network (teardown first)", st.ID))
	}
	// From here on, whatever the record names is this setup's: a failure
	// undoes it, in every mode, so that nothing is left half made and the
	// hook can be run again.
	defer func() {
		if retErr != nil {
			if err := l.Teardown(st.ID); err != nil {
				retErr = fmt.Errorf("%w (and undoing it: %v)", retErr, err)
			}
		}
	}()
	spec, rootfs, err := readBundle(st.Bundle)
	if err != nil {
		return err
	}
	rec := &Record{ID: st.ID, Mode: o.Mode.Kind, Pid: st.Pid, PidStart: pidStart(st.Pid), Bundle: st.Bundle}
	rec.Hostname = firstNonEmpty(o.Hostname, spec.Hostname, shortID(st.ID))

	if o.Mode.Kind == "host" {
		if err := l.saveRecord(rec); err != nil {
			return err
		}
		return etcFiles{hostname: rec.Hostname, hosts: readOr("/etc/hosts"), resolv: hostResolvConf()}.write(rootfs)
	}

	// Every other mode has a network namespace of its own (or another
	// container's): never configure the host's by mistake.
	ns, err := netns.GetFromPid(st.Pid)
	if err != nil {
		return fmt.Errorf("container %s: network namespace of pid %d: %w", st.ID, st.Pid, err)
	}
	defer ns.Close()
	if self, err := netns.Get(); err == nil {
		same := self.Equal(ns)
		self.Close()
		if same {
			return fmt.Errorf("container %s shares the host's network namespace: --network %s needs {\"type\": \"network\"} in linux.namespaces", st.ID, o.Mode.Kind)
		}
	}

	switch o.Mode.Kind {
	case "none":
		if err := l.saveRecord(rec); err != nil {
			return err
		}
		if err := bringUpLoopback(ns); err != nil {
			return err
		}
		return etcFiles{hostname: rec.Hostname, hosts: hostsFile(rec.Hostname, netip.Addr{}), resolv: hostResolvConf()}.write(rootfs)
	case "container":
		return l.joinContainer(rec, ns, o.Mode.Name, rootfs)
	}
	return l.setupBridge(rec, ns, o.Mode.Name, maps, rootfs)
}

// setupBridge is --network bridge[:NAME], in the order of package doc:
// the record, the network's rules and bridge, the lease, the port
// reservation, the veth and eth0, the DNAT, the /etc files.
func (l Layout) setupBridge(rec *Record, ns netns.NsHandle, network string, maps []portspec.Mapping, rootfs string) error {
	n, err := l.LoadNetwork(network)
	if err != nil {
		return err
	}
	rec.Network, rec.Bridge, rec.Firewall = n.Name, n.Bridge, n.Firewall
	rec.HostVeth = hostVethName(rec.ID)
	rec.Ports = maps
	if err := l.saveRecord(rec); err != nil {
		return err
	}
	crashpoint.Hit("net.setup.record")
	if !n.SetUp {
		if err := l.markSetUp(n.Name); err != nil {
			return err
		}
	}
	fw, err := firewall.New(n.Firewall)
	if err != nil {
		return err
	}
	bridge, err := l.ensureBridge(n, fw)
	if err != nil {
		return err
	}
	crashpoint.Hit("net.setup.bridge")

	pool, err := ipam.Open(l.ipamDir(n.Name), n.Subnet, n.Gateway)
	if err != nil {
		return err
	}
	addr, err := pool.Allocate(rec.ID)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	crashpoint.Hit("net.setup.lease")
	rec.Addr = addr
	if err := l.saveRecord(rec); err != nil {
		return err
	}
	if len(maps) > 0 {
		reg, err := ports.Open(l.portsDir())
		if err != nil {
			return err
		}
		if err := reg.Reserve(rec.ID, maps); err != nil {
			return err
		}
		crashpoint.Hit("net.setup.ports")
	}

	if err := connectContainer(n, rec, bridge, ns, l.vethMark()); err != nil {
		return err
	}
	if len(maps) > 0 {
		ep := firewall.Endpoint{ContainerID: rec.ID, Network: n.firewallNetwork(), Addr: addr, Ports: maps}
		if err := fw.AddPorts(ep); err != nil {
			return err // names the container and its ports
		}
		crashpoint.Hit("net.setup.publish")
	}
	return etcFiles{hostname: rec.Hostname, hosts: hostsFile(rec.Hostname, addr), resolv: hostResolvConf()}.write(rootfs)
}

// ensureBridge makes the network's bridge and rules the first time a
// container joins it. The bridge, marked as this network's (owner.go) and
// carrying its gateway, says the rest was done: it is made last, under the
// root lock and the namespace's links lock.
// A bridge of that name that is not provably this network's, or that
// carries another address, is refused: joining it would put the container
// on another root's (or another tool's) network.
func (l Layout) ensureBridge(n *Network, fw firewall.Backend) (netlink.Link, error) {
	if link, err := netlink.LinkByName(n.Bridge); err == nil {
		if state, err := l.checkBridge(n, link, false); err != nil || state == bridgeReady {
			return link, err
		}
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	unlockLinks, err := lockLinks()
	if err != nil {
		return nil, err
	}
	defer unlockLinks()
	if link, err := netlink.LinkByName(n.Bridge); err == nil {
		state, err := l.checkBridge(n, link, true)
		if err != nil || state == bridgeReady {
			return link, err
		}
	}
	if err := l.checkNetworkNameFree(n); err != nil {
		return nil, err
	}
	// The subnet was free of host routes when the network was defined; a
	// bridge made since (another root's network, another tool's) may have
	// taken it, and two bridges with one subnet break both.
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	if err := checkOverlap(n.Subnet, nil, routes); err != nil {
		return nil, fmt.Errorf("network %s: subnet %s %w (made since the network was defined: another berth-net root's network or another tool's interface)", n.Name, n.Subnet, err)
	}
	if err := enableForwarding(); err != nil {
		return nil, err
	}
	if err := fw.SetupNetwork(n.firewallNetwork()); err != nil {
		return nil, err // names the network
	}
	crashpoint.Hit("net.setup.network-rules")
	return createBridge(n, l.bridgeMark(n.Name))
}

// connectContainer cables the container to the bridge and configures its
// end: the kernel steps of package doc, in order. mark is the host end's
// alias, which tells gc whose it is.
func connectContainer(n *Network, rec *Record, bridge netlink.Link, ns netns.NsHandle, mark string) error {
	if _, err := createVethPair(rec.HostVeth, bridge, ns, n.MTU, mark); err != nil {
		return err
	}
	crashpoint.Hit("net.setup.veth")
	h, err := routeNetlinkAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0 in the container: %w", err)
	}
	if err := addressLink(h, eth0, netip.PrefixFrom(rec.Addr, n.Subnet.Bits())); err != nil {
		return err
	}
	crashpoint.Hit("net.setup.address")
	if err := setUp(h, eth0); err != nil {
		return err
	}
	if err := bringUp(h, "lo"); err != nil {
		return err
	}
	if n.Internal {
		return nil // an internal network has no way out
	}
	if err := addDefaultRoute(h, n.Gateway); err != nil {
		return err
	}
	crashpoint.Hit("net.setup.route")
	return nil
}

// pidStart is the start time of the container's init, which tells it from a
// later process with the same pid (Record.running); 0 if it is gone.
func pidStart(pid int) uint64 {
	t, _ := process.StartTime(pid)
	return t
}
