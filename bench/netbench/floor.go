package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// floor is the least a bridge network setup can do, for reference: from
// this process, over netlink, make a veth pair, attach one end to a
// bridge, move the other into the container's namespace, give it an
// address and bring it up. No exec, no state, no firewall, no IPAM.
type floor struct {
	bridge *netlink.Bridge
	mu     sync.Mutex
	next   int
}

func newFloor() (*floor, error) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "fl" + strconv.Itoa(os.Getpid()%100000)}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("floor bridge: %w", err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, err
	}
	return &floor{bridge: br}, nil
}

func (f *floor) name() string { return "floor (bare netlink)" }

func vethName(s *standIn) string { return "fv" + strconv.Itoa(s.cmd.Process.Pid) }

func (f *floor) setup(s *standIn, _ int) (time.Duration, int64, error) {
	f.mu.Lock()
	f.next++
	n := f.next
	f.mu.Unlock()
	start := time.Now()
	ns, err := netns.GetFromPid(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName(s), MasterIndex: f.bridge.Index},
		PeerName: "fp" + strconv.Itoa(s.cmd.Process.Pid), PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return 0, 0, err
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return 0, 0, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, 0, err
	}
	defer h.Close()
	peer, err := h.LinkByName(veth.PeerName)
	if err != nil {
		return 0, 0, err
	}
	ip := net.IPv4(10, 252, byte(n>>8), byte(n))
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(16, 32)}}); err != nil {
		return 0, 0, err
	}
	if err := h.LinkSetUp(peer); err != nil {
		return 0, 0, err
	}
	return time.Since(start), 0, nil
}

func (f *floor) teardown(s *standIn) (time.Duration, error) {
	start := time.Now()
	link, err := netlink.LinkByName(vethName(s))
	if err != nil {
		return 0, err
	}
	if err := netlink.LinkDel(link); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (f *floor) close() { netlink.LinkDel(f.bridge) }
