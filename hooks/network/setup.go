package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/firewall"
	"github.com/berth-runtime/berth/hooks/ipam"
	"github.com/berth-runtime/berth/hooks/ports"
	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/libruntime/crashpoint"
)

// Mode is a parsed --network value.
type Mode struct {
	Kind string // bridge, host, none, container
	Name string // bridge: the network; container: the target container id
}

// ParseMode reads bridge, bridge:NAME, host, none or container:ID.
func ParseMode(s string) (Mode, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch {
	case kind == "bridge" && !hasArg:
		return Mode{Kind: "bridge", Name: DefaultNetwork}, nil
	case kind == "bridge":
		if err := names.NetworkName(arg); err != nil {
			return Mode{}, fmt.Errorf("--network %q: %w", s, err)
		}
		return Mode{Kind: "bridge", Name: arg}, nil
	case (kind == "host" || kind == "none") && !hasArg:
		return Mode{Kind: kind}, nil
	case kind == "container" && hasArg:
		if err := names.ContainerID(arg); err != nil {
			return Mode{}, fmt.Errorf("--network %q: %w", s, err)
		}
		return Mode{Kind: "container", Name: arg}, nil
	}
	return Mode{}, fmt.Errorf("--network %q: unknown mode (use bridge, bridge:NAME, host, none or container:ID)", s)
}

// SetupOptions are berth-net setup's arguments.
type SetupOptions struct {
	Mode     Mode
	Publish  []string
	Hostname string
}

// CheckSetupOptions checks setup's arguments as given on the command line,
// before any container exists: `berth spec` runs it so that a bad value is
// refused when the config is written, not when the container starts.
func CheckSetupOptions(mode string, publish []string, hostname string) error {
	m, err := ParseMode(mode)
	if err != nil {
		return err
	}
	maps, err := portspec.ParseAll(publish)
	if err != nil {
		return err
	}
	if len(maps) > 0 && m.Kind != "bridge" {
		return fmt.Errorf("--publish: only bridge networks publish ports (this container's network is %s)", m.Kind)
	}
	return checkHostname(hostname)
}

// checkHostname accepts what /etc/hosts and sethostname(2) can hold: a DNS
// name of letters, digits, '-' and '.', at most 64 bytes (the kernel's
// limit). Anything else (a newline, a space) could forge lines of the
// container's /etc/hosts.
func checkHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > 64 {
		return fmt.Errorf("--hostname %.20q...: longer than 64 bytes", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("--hostname %q: character %q not allowed (use letters, digits, '-', '.')", h, c)
		}
	}
	if h[0] == '-' || h[0] == '.' {
		return fmt.Errorf("--hostname %q: must begin with a letter or a digit", h)
	}
	return nil
}

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
	maps, err := portspec.ParseAll(o.Publish)
	if err != nil {
		return err
	}
	if err := checkHostname(o.Hostname); err != nil {
		return err
	}
	if len(maps) > 0 && o.Mode.Kind != "bridge" {
		return fmt.Errorf("--publish: only bridge networks publish ports (this container's network is %s)", o.Mode.Kind)
	}
	if _, err := l.LoadRecord(st.ID); err == nil {
		return fmt.Errorf("container %s: already has a network (teardown first)", st.ID)
	}
	spec, rootfs, err := readBundle(st.Bundle)
	if err != nil {
		return err
	}
	rec := &Record{ID: st.ID, Mode: o.Mode.Kind, Pid: st.Pid, PidStart: startTime(st.Pid), Bundle: st.Bundle}
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

	// bridge
	n, err := l.LoadNetwork(o.Mode.Name)
	if err != nil {
		return err
	}
	rec.Network, rec.Bridge, rec.Firewall = n.Name, n.Bridge, n.Firewall
	rec.HostVeth = hostVethName(st.ID)
	rec.Ports = maps
	if err := l.saveRecord(rec); err != nil {
		return err
	}
	crashpoint.Hit("net.setup.record")
	defer func() {
		if retErr != nil {
			if err := l.Teardown(st.ID); err != nil {
				retErr = fmt.Errorf("%w (and undoing it: %v)", retErr, err)
			}
		}
	}()
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
	addr, err := pool.Allocate(st.ID)
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
		if err := reg.Reserve(st.ID, maps); err != nil {
			return err
		}
		crashpoint.Hit("net.setup.ports")
	}

	if err := connectContainer(n, rec, bridge, ns, l.vethMark()); err != nil {
		return err
	}
	if len(maps) > 0 {
		ep := firewall.Endpoint{ContainerID: st.ID, Network: n.firewallNetwork(), Addr: addr, Ports: maps}
		if err := fw.AddPorts(ep); err != nil {
			return fmt.Errorf("publish ports of %s: %w", st.ID, err)
		}
		crashpoint.Hit("net.setup.publish")
	}
	return etcFiles{hostname: rec.Hostname, hosts: hostsFile(rec.Hostname, addr), resolv: hostResolvConf()}.write(rootfs)
}

// ensureBridge makes the network's bridge and rules the first time a
// container joins it. The bridge's existence, marked as this network's
// (owner.go), says the rest was done: it is made last, under the root lock.
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
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	crashpoint.Hit("net.setup.network-rules")
	link, err := createBridge(n, l.bridgeMark(n.Name))
	if err != nil {
		return nil, err
	}
	if err := enableRouteLocalnet(n.Bridge); err != nil {
		return nil, err
	}
	return link, nil
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
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bring up eth0: %w", err)
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

// routeNetlinkAt opens a NETLINK_ROUTE socket in the container's namespace:
// links, addresses and routes are all the container's end needs. Without
// the family, netlink.NewHandleAt opens one socket per netlink family it
// knows (xfrm and netfilter too), entering the namespace for each, and
// needs the xfrm_user module loaded.
func routeNetlinkAt(ns netns.NsHandle) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in the container's namespace: %w", err)
	}
	return h, nil
}

func bringUpLoopback(ns netns.NsHandle) error {
	h, err := routeNetlinkAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return bringUp(h, "lo")
}

// joinContainer is --network container:ID: the container was created in
// ID's network namespace (berth spec put its path in config.json); check
// that it really is, and share ID's name resolution.
func (l Layout) joinContainer(rec *Record, ns netns.NsHandle, target, rootfs string) error {
	t, err := l.LoadRecord(target)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--network container:%s: no such container with a berth network", target)
	}
	if err != nil {
		return err
	}
	if t.Mode == "host" {
		return fmt.Errorf("--network container:%s: that container uses the host's network", target)
	}
	if !t.running() {
		return fmt.Errorf("--network container:%s: container is not running", target)
	}
	tns, err := netns.GetFromPid(t.Pid)
	if err != nil {
		return fmt.Errorf("--network container:%s: %w", target, err)
	}
	defer tns.Close()
	if !tns.Equal(ns) {
		return fmt.Errorf("--network container:%s: this container is not in %s's network namespace (config.json's linux.namespaces network path must be /proc/%d/ns/net)", target, target, t.Pid)
	}
	rec.Target = target
	if err := l.saveRecord(rec); err != nil {
		return err
	}
	return etcFiles{hostname: rec.Hostname, hosts: hostsFile(rec.Hostname, t.Addr), resolv: hostResolvConf()}.write(rootfs)
}

// NamespacePath is where `berth spec --network container:ID` points the
// new container's network namespace: the running target's own.
func (l Layout) NamespacePath(target string) (string, error) {
	t, err := l.LoadRecord(target)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("--network container:%s: no such container with a berth network", target)
	}
	if err != nil {
		return "", err
	}
	if t.Mode == "host" {
		return "", fmt.Errorf("--network container:%s: that container uses the host's network (use --network host)", target)
	}
	if !t.running() {
		return "", fmt.Errorf("--network container:%s: container is not running", target)
	}
	return "/proc/" + strconv.Itoa(t.Pid) + "/ns/net", nil
}

// running reports whether the container's init still runs: same pid, same
// start time.
func (r *Record) running() bool {
	return r.Pid > 0 && r.PidStart != 0 && startTime(r.Pid) == r.PidStart
}

// startTime is field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot; 0 if the process is gone.
func startTime(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0
	}
	// f[0] is field 3 (state); field 22 is f[19].
	if f[0] == "Z" || f[0] == "X" {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// bundleConfig is the part of config.json berth-net reads: the hostname and
// the rootfs. Decoding only these, not a whole specs.Spec, saves about 1 ms
// of every setup: encoding/json builds a decoder for each type it meets
// on first use, and a Spec holds hundreds.
type bundleConfig struct {
	Hostname string `json:"hostname"`
	Root     *struct {
		Path string `json:"path"`
	} `json:"root"`
}

// readBundle reads the container's config.json for its hostname and
// rootfs.
func readBundle(bundle string) (*bundleConfig, string, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var cfg bundleConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, "", fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	if cfg.Root == nil || cfg.Root.Path == "" {
		return nil, "", fmt.Errorf("bundle %s: config.json: root.path missing", bundle)
	}
	rootfs := cfg.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	return &cfg, rootfs, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

var _ = unix.EEXIST
