package integration

// Harness of the network tests (network*_test.go).
//
// Safety: every test that gives a container a network runs berth inside a
// "test host" network namespace it made (bt-h-XXXXXXXX), never in the
// machine's own: routes, sysctls and firewall rules land there and vanish
// with it. A second namespace (bt-o-XXXXXXXX), the "other host", is cabled
// to it by a veth pair with addresses from 192.0.2.0/24 (TEST-NET-1), so
// traffic only ever goes to namespaces the test made or to loopback, and
// every client has a timeout. berth runs there through `nsenter --net`
// (not `ip netns exec`, which remounts /sys and hides /sys/fs/cgroup).
// The cleanups kill the test's background processes, delete its
// containers inside the test host (so their poststop hooks run there),
// then delete both namespaces; the BERTH_NET_ROOT lives in the test's temp
// dir, which newEnv removes last.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

// The two hosts' addresses on their link; the other host's default route
// goes through the test host.
const (
	hostAddr  = "192.0.2.1"
	otherAddr = "192.0.2.2"
)

// fwBackends are the firewall backends every firewall-dependent test runs
// against, each on a network created with --firewall.
var fwBackends = []string{"nftables", "iptables"}

// netHost is one test's pair of network namespaces and its berth-net
// state. Methods report failures on t.
type netHost struct {
	*env
	t          *testing.T
	sfx        string // random suffix of every name the test makes
	ns, other  string // namespace names (under /run/netns)
	hostVeth   string // the test host's end of the link to the other host
	otherVeth  string
	netRoot    string   // BERTH_NET_ROOT
	environ    []string // added to every berth and berth-net run
	resolvConf string   // BERTH_NET_RESOLV_CONF

	helperOnce sync.Once
	helperPath string
	helperErr  error
}

// requireNetTools skips the test unless the host tools it drives exist;
// under CI=true a missing tool fails it instead (the whole network suite
// would otherwise pass without running).
func requireNetTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ip", "nsenter", "busybox", "iptables-save", "nft", "ss", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "the network tests need %s on the host (scripts/setup.sh installs it): %v", tool, err)
		}
	}
}

// newNetHost makes the test host and the other host, linked, and a fresh
// BERTH_NET_ROOT. Their cleanup is registered before anything is put in
// them, so it runs after every container of the test is deleted.
func newNetHost(t *testing.T) *netHost {
	t.Helper()
	e := newEnv(t)
	requireNetTools(t)
	if _, err := os.Stat(filepath.Join(filepath.Dir(e.bin), "berth-net")); err != nil {
		t.Fatalf("berth-net must be installed beside %s (make build): %v", e.bin, err)
	}
	sfx := strings.TrimPrefix(randomID("x"), "x")
	h := &netHost{
		env: e, t: t, sfx: sfx,
		ns: "bt-h-" + sfx, other: "bt-o-" + sfx,
		hostVeth: "bth" + sfx, otherVeth: "bto" + sfx,
		netRoot: filepath.Join(e.base, "net"),
	}
	h.resolvConf = e.writeFile("resolv.conf", "nameserver 198.51.100.53\nsearch bt.test\n")
	h.environ = []string{
		"BERTH_NET_ROOT=" + h.netRoot,
		"BERTH_NET_RESOLV_CONF=" + h.resolvConf,
		"BERTH_NET_UPSTREAM_RESOLV_CONF=" + filepath.Join(e.base, "no-upstream-resolv.conf"),
	}
	t.Cleanup(h.removeNamespaces)
	for _, ns := range []string{h.ns, h.other} {
		h.ip("netns", "add", ns)
		h.ip("-n", ns, "link", "set", "lo", "up")
	}
	h.ip("link", "add", h.hostVeth, "netns", h.ns, "type", "veth", "peer", "name", h.otherVeth, "netns", h.other)
	h.ip("-n", h.ns, "addr", "add", hostAddr+"/24", "dev", h.hostVeth)
	h.ip("-n", h.ns, "link", "set", h.hostVeth, "up")
	h.ip("-n", h.other, "addr", "add", otherAddr+"/24", "dev", h.otherVeth)
	h.ip("-n", h.other, "link", "set", h.otherVeth, "up")
	h.ip("-n", h.other, "route", "add", "default", "via", hostAddr)
	return h
}

// ip runs the host's ip(8) (namespaced with -n where the caller says so)
// and fails the test unless it succeeds.
func (h *netHost) ip(a ...string) result {
	h.t.Helper()
	r := runCmd(h.t, runOpts{}, "ip", a...)
	if r.code != 0 {
		h.t.Fatalf("setting up the test's namespaces: %s", r)
	}
	return r
}

func (h *netHost) removeNamespaces() {
	for _, ns := range []string{h.ns, h.other} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if r := runCmd(h.t, runOpts{}, "ip", "netns", "del", ns); r.code != 0 {
			h.t.Errorf("cleanup: deleting network namespace %s: %s", ns, r)
		}
	}
}

func (h *netHost) nsPath() string    { return "/run/netns/" + h.ns }
func (h *netHost) otherPath() string { return "/run/netns/" + h.other }

// run runs a command in the test host's network namespace.
func (h *netHost) run(a ...string) result {
	h.t.Helper()
	return runCmd(h.t, runOpts{env: h.environ}, "nsenter", append([]string{"--net=" + h.nsPath()}, a...)...)
}

// otherRun runs a command in the other host's network namespace.
func (h *netHost) otherRun(a ...string) result {
	h.t.Helper()
	return runCmd(h.t, runOpts{env: h.environ}, "nsenter", append([]string{"--net=" + h.otherPath()}, a...)...)
}

func (h *netHost) mustRun(a ...string) result {
	h.t.Helper()
	r := h.run(a...)
	if r.code != 0 {
		h.t.Fatalf("in the test host: expected exit 0 from %s", r)
	}
	return r
}

func (h *netHost) mustOther(a ...string) result {
	h.t.Helper()
	r := h.otherRun(a...)
	if r.code != 0 {
		h.t.Fatalf("in the other host: expected exit 0 from %s", r)
	}
	return r
}

// berth runs the runtime under test in the test host, with the test's
// --root and BERTH_NET_ROOT.
func (h *netHost) berth(a ...string) result {
	h.t.Helper()
	return h.berthEnv(nil, a...)
}

// berthEnv is berth with extra added to its environment.
func (h *netHost) berthEnv(extra []string, a ...string) result {
	h.t.Helper()
	return h.berthOpts(runOpts{env: extra}, a...)
}

// berthOpts is berth run with o (o.env added to the test's environment).
// It only reports on h.t if the command cannot be set up, so that it can
// run from the test's own goroutines.
func (h *netHost) berthOpts(o runOpts, a ...string) result {
	h.t.Helper()
	o.env = append(append([]string{}, h.environ...), o.env...)
	args := append([]string{"--net=" + h.nsPath(), h.bin, "--root", h.root}, a...)
	return runCmd(h.t, o, "nsenter", args...)
}

func (h *netHost) mustBerth(a ...string) result {
	h.t.Helper()
	r := h.berth(a...)
	if r.code != 0 {
		h.t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

func (h *netHost) netBin() string { return filepath.Join(filepath.Dir(h.bin), "berth-net") }

// berthNet runs berth-net itself in the test host.
func (h *netHost) berthNet(a ...string) result {
	h.t.Helper()
	return h.run(append([]string{h.netBin()}, a...)...)
}

// createNetwork defines a network: `berth network create FLAGS NAME`, as
// users do.
func (h *netHost) createNetwork(name string, flags ...string) netInspection {
	h.t.Helper()
	r := h.berth(append(append([]string{"network", "create"}, flags...), name)...)
	if r.code != 0 {
		h.t.Fatalf("network create %s: expected exit 0, got %s", name, r)
	}
	return h.inspect(name)
}

// netInspection is `berth network inspect`'s JSON.
type netInspection struct {
	Name       string `json:"name"`
	Bridge     string `json:"bridge"`
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway"`
	MTU        int    `json:"mtu"`
	Internal   bool   `json:"internal"`
	Firewall   string `json:"firewall"`
	Containers []struct {
		ID       string            `json:"id"`
		Hostname string            `json:"hostname"`
		Address  string            `json:"address"`
		HostVeth string            `json:"hostVeth"`
		Ports    []json.RawMessage `json:"ports"`
	} `json:"containers"`
}

func (h *netHost) inspect(name string) netInspection {
	h.t.Helper()
	r := h.mustBerth("network", "inspect", name)
	var in netInspection
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		h.t.Fatalf("network inspect %s: expected JSON, got %v in %s", name, err, r)
	}
	return in
}

// addrOf is the address inspect shows for container id on network name.
func (h *netHost) addrOf(name, id string) string {
	h.t.Helper()
	for _, c := range h.inspect(name).Containers {
		if c.ID == id {
			return c.Address
		}
	}
	h.t.Fatalf("network inspect %s: container %s is not listed", name, id)
	return ""
}

// background starts a long-running command in the test host (other=false)
// or the other host; the test's cleanup kills it before the namespaces go.
func (h *netHost) background(other bool, a ...string) *proc {
	h.t.Helper()
	ns := h.nsPath()
	if other {
		ns = h.otherPath()
	}
	p := startCmd(h.t, runOpts{env: h.environ, timeout: 5 * time.Minute}, "nsenter", append([]string{"--net=" + ns}, a...)...)
	h.t.Cleanup(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		p.wait()
	})
	return p
}

// ---- containers ----------------------------------------------------------

// netCtr describes a networked container.
type netCtr struct {
	spec  []string          // `berth spec` flags: --network, --publish, --hostname
	args  []string          // its process (default: sleep 3600)
	files map[string]string // new files in its private rootfs
	// keepHookEnv leaves the hooks' env exactly as berth spec pinned it;
	// by default the test's BERTH_NET_RESOLV_CONF files are added to it,
	// so that /etc/resolv.conf does not depend on the machine's.
	keepHookEnv bool
	hookEnv     []string // added instead of the test's BERTH_NET_RESOLV_CONF files
	specEnv     []string // added to berth spec's environment
	mods        []func(*specs.Spec)
}

// bundle writes a bundle whose config.json `berth spec` generated in the
// test host, adjusted for the test: a private rootfs (berth-net writes its
// /etc) holding the test helper at /bt-helper, no terminal, c.args.
func (h *netHost) bundle(c netCtr) string {
	h.t.Helper()
	dir := h.mkdir("bundle")
	if r := h.berthEnv(c.specEnv, append([]string{"spec", "-b", dir}, c.spec...)...); r.code != 0 {
		h.t.Fatalf("berth spec %v: expected exit 0, got %s", c.spec, r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		h.t.Fatalf("berth spec wrote no JSON config: %v", err)
	}
	s.Root = &specs.Root{Path: h.rootfsWith(c.files), Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = c.args
	if len(s.Process.Args) == 0 {
		s.Process.Args = []string{"sleep", "3600"}
	}
	if !c.keepHookEnv && s.Hooks != nil {
		add := c.hookEnv
		if add == nil {
			add = h.environ[1:]
		}
		for _, hooks := range [][]specs.Hook{s.Hooks.CreateRuntime, s.Hooks.Poststop} {
			for i := range hooks {
				if len(hooks[i].Env) > 0 {
					hooks[i].Env = append(hooks[i].Env, add...)
				}
			}
		}
	}
	for _, m := range c.mods {
		m(&s)
	}
	h.writeConfig(dir, &s)
	return dir
}

func (h *netHost) writeConfig(dir string, s *specs.Spec) {
	h.t.Helper()
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// rootfsWith makes a private rootfs with the helper and the given files.
func (h *netHost) rootfsWith(files map[string]string) string {
	h.t.Helper()
	rootfs := h.privateRootfs()
	helper := h.helper()
	if err := os.Link(helper, filepath.Join(rootfs, "bt-helper")); err != nil {
		data, err := os.ReadFile(helper)
		if err == nil {
			err = os.WriteFile(filepath.Join(rootfs, "bt-helper"), data, 0o755)
		}
		if err != nil {
			h.t.Fatalf("putting the helper into the rootfs: %v", err)
		}
	}
	for name, content := range files {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	return rootfs
}

// newID returns a fresh container id whose cleanup deletes the container
// inside the test host (so that its poststop hook runs there) and checks
// that nothing of it is left.
func (h *netHost) newID() string {
	id := randomID("bt-")
	h.trackID(id)
	return id
}

// trackID makes the test's cleanup delete container id in the test host
// and check that nothing of it is left, as newID does for a new id.
func (h *netHost) trackID(id string) {
	h.t.Cleanup(func() {
		if r := h.berth("delete", "-f", id); r.code != 0 {
			h.t.Errorf("cleanup: delete -f %s: %s", id, r)
		}
		assertNoLeftovers(h.t, h.root, id)
	})
}

// tryStart runs the container of bundle with `run -d` and returns its id
// and the result, whatever it is.
func (h *netHost) tryStart(bundle string) (string, result) {
	h.t.Helper()
	id := h.newID()
	return id, h.berth("run", "-d", "-b", bundle, id)
}

// start builds c's bundle and runs it detached, failing the test unless
// it runs.
func (h *netHost) start(c netCtr) string {
	h.t.Helper()
	id, r := h.tryStart(h.bundle(c))
	if r.code != 0 {
		h.t.Fatalf("run -d %s (spec %v): expected exit 0, got %s", id, c.spec, r)
	}
	return id
}

// pid is the host pid of a running container's init.
func (h *netHost) pid(id string) int {
	h.t.Helper()
	r := h.mustBerth("state", id)
	var st ociState
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Pid <= 0 {
		h.t.Fatalf("state %s: expected a pid, got %s", id, r)
	}
	return st.Pid
}

// exec runs a command in a running container.
func (h *netHost) exec(id string, a ...string) result {
	h.t.Helper()
	return h.berth(append([]string{"exec", id}, a...)...)
}

func (h *netHost) mustExec(id string, a ...string) result {
	h.t.Helper()
	r := h.exec(id, a...)
	if r.code != 0 {
		h.t.Fatalf("exec in %s: expected exit 0, got %s", id, r)
	}
	return r
}

// readRootfs reads a file of the container's rootfs from the host side.
func (h *netHost) readRootfs(bundle, name string) string {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		h.t.Fatal(err)
	}
	content, err := os.ReadFile(filepath.Join(s.Root.Path, name))
	if err != nil {
		h.t.Errorf("reading %s of the container's rootfs: %v", name, err)
	}
	return string(content)
}

// webServer is a container process serving /www over HTTP on port 80 and
// echoing UDP datagrams on port 53.
var webServer = []string{"sh", "-c", "httpd -p 80 -h /www && exec /bt-helper udp-echo 53"}

// webFiles is /www/index.html holding tok.
func webFiles(tok string) map[string]string {
	return map[string]string{"www/index.html": tok + "\n"}
}

// ---- clients -------------------------------------------------------------

// netSide is where a client runs: the test host, the other host or a container.
type netSide struct {
	name   string
	run    func(a ...string) result
	helper string // path of the test helper there
}

func (h *netHost) hostSide() netSide { return netSide{"the test host", h.run, h.helper()} }
func (h *netHost) otherSide() netSide {
	return netSide{"the other host", h.otherRun, h.helper()}
}

func (h *netHost) in(id string) netSide {
	return netSide{"container " + id, func(a ...string) result { return h.exec(id, a...) }, "/bt-helper"}
}

// tcpGet connects to addr:port with busybox nc (2 s to connect, 6 s in
// all), sends an HTTP/1.0 GET of path, and returns what came back.
func (s netSide) tcpGet(addr string, port int, path string) result {
	script := fmt.Sprintf(`busybox printf 'GET /%s HTTP/1.0\r\n\r\n' | busybox timeout 6 busybox nc -w 2 %s %d`, path, addr, port)
	return s.run("busybox", "sh", "-c", script)
}

// udpSend sends msg to addr:port with the helper (by default up to 10
// datagrams, 300 ms apart) and returns the first reply on stdout.
func (s netSide) udpSend(addr string, port int, msg string, flags ...string) result {
	a := append(append([]string{s.helper, "udp-send"}, flags...), addr, strconv.Itoa(port), msg)
	return s.run(a...)
}

// netPollFor calls f until it returns true or d passes.
func netPollFor(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// serverStartTimeout bounds the wait for a container's server to answer:
// seconds alone, far longer on two cores shared with the load tests. The
// wait ends at the first answer.
const serverStartTimeout = 60 * time.Second

// wantTCP checks that s gets tok from addr:port, retrying while the server
// may still be starting.
func wantTCP(t *testing.T, s netSide, addr string, port int, tok, what string) {
	t.Helper()
	wantTCPWithin(t, serverStartTimeout, s, addr, port, tok, what)
}

// wantTCPNow is wantTCP for a server known to be up: one try.
func wantTCPNow(t *testing.T, s netSide, addr string, port int, tok, what string) {
	t.Helper()
	wantTCPWithin(t, 0, s, addr, port, tok, what)
}

func wantTCPWithin(t *testing.T, d time.Duration, s netSide, addr string, port int, tok, what string) {
	t.Helper()
	var last result
	if !netPollFor(d, func() bool {
		last = s.tcpGet(addr, port, "")
		return strings.Contains(last.stdout, tok)
	}) {
		t.Errorf("%s: expected %s to get %q from TCP %s:%d, last try: %s", what, s.name, tok, addr, port, last)
	}
}

// wantNoTCP checks that s does not get tok from addr:port (one try: call
// it after a positive check showed the server is up).
func wantNoTCP(t *testing.T, s netSide, addr string, port int, tok, what string) {
	t.Helper()
	if r := s.tcpGet(addr, port, ""); strings.Contains(r.stdout, tok) {
		t.Errorf("%s: expected %s NOT to reach TCP %s:%d, but it got the server's answer: %s", what, s.name, addr, port, r)
	}
}

// wantUDP checks that s gets an echo of a fresh message from addr:port.
func wantUDP(t *testing.T, s netSide, addr string, port int, what string) string {
	t.Helper()
	msg := token()
	// 100 datagrams 300 ms apart: a server started a moment ago may take
	// seconds to bind on a loaded host; the first echo ends the wait.
	r := s.udpSend(addr, port, msg, "-tries", "100")
	if r.code != 0 || !strings.Contains(r.stdout, "echo "+msg) {
		t.Errorf("%s: expected %s to get an echo from UDP %s:%d, got %s", what, s.name, addr, port, r)
	}
	return r.stdout
}

// ---- state and leftovers ---------------------------------------------------

// assertDistinctAddresses checks that network n (as created) lists want
// containers, each with a host address of n's subnet other than its
// gateway, and no address twice. It returns their addresses by id.
func (h *netHost) assertDistinctAddresses(n netInspection, want int) map[string]string {
	h.t.Helper()
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		h.t.Fatalf("network %s: subnet %q: %v", n.Name, n.Subnet, err)
	}
	in := h.inspect(n.Name)
	idOf, addrOf := map[string]string{}, map[string]string{}
	for _, c := range in.Containers {
		a, err := netip.ParseAddr(c.Address)
		if err != nil || !subnet.Contains(a) || c.Address == n.Gateway {
			h.t.Errorf("container %s: expected a host address of %s, got %q", c.ID, n.Subnet, c.Address)
		}
		if other, dup := idOf[c.Address]; dup {
			h.t.Errorf("containers %s and %s both got address %s", other, c.ID, c.Address)
		}
		idOf[c.Address], addrOf[c.ID] = c.ID, c.Address
	}
	if len(in.Containers) != want || len(idOf) != want {
		h.t.Errorf("inspect: expected %d containers with distinct addresses, got %d containers, %d addresses", want, len(in.Containers), len(idOf))
	}
	return addrOf
}

// recordAddr is the address in container id's berth-net record, or "" if
// it has no record (or no address yet).
func (h *netHost) recordAddr(id string) string {
	var rec struct {
		Addr string `json:"addr"`
	}
	data, err := os.ReadFile(filepath.Join(h.netRoot, "containers", id+".json"))
	if err != nil || json.Unmarshal(data, &rec) != nil {
		return ""
	}
	return rec.Addr
}

// hostVethOf is the name berth-net gives the host end of id's veth pair.
func hostVethOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "bt" + hex.EncodeToString(sum[:])[:11]
}

// links lists the test host's interfaces, one per line.
func (h *netHost) links() string {
	h.t.Helper()
	return h.mustRun("ip", "-o", "link", "show").stdout
}

// vethsOnHost lists the veths in the test host other than the link to the
// other host.
func (h *netHost) vethsOnHost() []string {
	h.t.Helper()
	var out []string
	for _, l := range strings.Split(h.mustRun("ip", "-o", "link", "show", "type", "veth").stdout, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != h.hostVeth {
			out = append(out, name)
		}
	}
	return out
}

// rules is the test host's whole firewall: iptables-save and nft's ruleset.
func (h *netHost) rules() string {
	h.t.Helper()
	return h.mustRun("iptables-save").stdout + "\n" + h.mustRun("nft", "list", "ruleset").stdout
}

// addrRE matches addr as a whole address (10.88.0.2 but not 10.88.0.20).
func addrRE(addr string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(addr) + `([^0-9]|$)`)
}

// netRootMentions lists the files under BERTH_NET_ROOT (network
// definitions aside) whose name or content mentions id: records, leases,
// lease indexes and port reservations.
func (h *netHost) netRootMentions(id string) []string {
	var found []string
	_ = filepath.WalkDir(h.netRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(h.netRoot, p)
		if strings.HasPrefix(rel, "networks/") {
			return nil
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(rel, id) || strings.Contains(string(data), id) {
			found = append(found, fmt.Sprintf("%s (%q)", rel, strings.TrimSpace(string(data))))
		}
		return nil
	})
	return found
}

// assertNoNetLeftovers checks that nothing berth-net made for container id
// (address addr, if known, and host ports) is left in the test host or
// under BERTH_NET_ROOT.
func (h *netHost) assertNoNetLeftovers(what, id, addr string, ports ...int) {
	h.t.Helper()
	if m := h.netRootMentions(id); len(m) > 0 {
		h.t.Errorf("%s: leftover state of %s under BERTH_NET_ROOT (record, lease or port reservation): %v", what, id, m)
	}
	if links := h.links(); strings.Contains(links, hostVethOf(id)) {
		h.t.Errorf("%s: leftover veth %s of %s in the test host:\n%s", what, hostVethOf(id), id, links)
	}
	rules := h.rules()
	if strings.Contains(rules, "berth:"+id) {
		h.t.Errorf("%s: leftover firewall rules tagged berth:%s:\n%s", what, id, rules)
	}
	if addr != "" && addrRE(addr).MatchString(rules) {
		h.t.Errorf("%s: leftover firewall rules mentioning %s's address %s:\n%s", what, id, addr, rules)
	}
	for _, p := range ports {
		if regexp.MustCompile(`dport ` + strconv.Itoa(p) + `\b`).MatchString(rules) {
			h.t.Errorf("%s: leftover firewall rules for host port %d of %s:\n%s", what, p, id, rules)
		}
	}
}

// assertNothingOnNetwork checks, after all of ids were deleted, that the
// test host has no container veth and no per-container firewall rule, that
// network netName lists no container, that BERTH_NET_ROOT holds no record,
// lease or port reservation, nor any file mentioning one of ids, and that
// the runtime kept nothing of them.
func (h *netHost) assertNothingOnNetwork(what, netName string, ids []string) {
	h.t.Helper()
	if v := h.vethsOnHost(); len(v) != 0 {
		h.t.Errorf("%s: expected no container veth in the test host, got %d: %v", what, len(v), v)
	}
	if in := h.inspect(netName); len(in.Containers) != 0 {
		h.t.Errorf("%s: expected no container on network %s, inspect lists %d", what, netName, len(in.Containers))
	}
	if rules := h.rules(); strings.Contains(rules, "berth:bt-") {
		h.t.Errorf("%s: expected no per-container firewall rule (tag berth:bt-...), got:\n%s", what, rules)
	}
	for _, dir := range []string{"containers", filepath.Join("ipam", netName, "leases"), filepath.Join("ipam", netName, "owners"), filepath.Join("ports", "owners")} {
		if ents, err := os.ReadDir(filepath.Join(h.netRoot, dir)); err == nil && len(ents) > 0 {
			h.t.Errorf("%s: expected %s under BERTH_NET_ROOT to be empty, it has %d entries", what, dir, len(ents))
		}
	}
	for _, id := range ids {
		if m := h.netRootMentions(id); len(m) > 0 {
			h.t.Errorf("%s: leftover state of %s under BERTH_NET_ROOT: %v", what, id, m)
		}
		assertNoLeftovers(h.t, h.root, id)
	}
}

// assertGone checks that the runtime has forgotten container id.
func (h *netHost) assertGone(what, id string) {
	h.t.Helper()
	if r := h.berth("state", id); r.code == 0 {
		h.t.Errorf("%s: expected container %s not to exist, state says %s", what, id, r)
	}
	if r := h.mustBerth("list"); strings.Contains(r.stdout, id) {
		h.t.Errorf("%s: expected `berth list` not to show %s, got %q", what, id, r.stdout)
	}
	assertNoLeftovers(h.t, h.root, id)
}

// assertNetworkGone checks that network n's bridge is gone and, when it
// was the last network, every berth chain and the berth table.
func (h *netHost) assertNetworkGone(n netInspection, last bool) {
	h.t.Helper()
	if r := h.run("ip", "link", "show", n.Bridge); r.code == 0 {
		h.t.Errorf("after network rm %s: expected bridge %s to be gone, got %s", n.Name, n.Bridge, r)
	}
	rules := h.rules()
	if addrRE(n.Gateway).MatchString(rules) || strings.Contains(rules, n.Subnet) || strings.Contains(rules, `"`+n.Bridge+`"`) || strings.Contains(rules, " "+n.Bridge+" ") {
		h.t.Errorf("after network rm %s: expected no firewall rule to mention its subnet %s or bridge %s:\n%s", n.Name, n.Subnet, n.Bridge, rules)
	}
	if last {
		if strings.Contains(rules, "BERTH") || strings.Contains(rules, "table ip berth") {
			h.t.Errorf("after network rm of the last network %s: expected no BERTH chain and no berth table:\n%s", n.Name, rules)
		}
	}
}

// conntrack is the test host's connection tracking table, or "" with
// ok=false when the kernel does not show it.
func (h *netHost) conntrack() (string, bool) {
	h.t.Helper()
	r := h.run("cat", "/proc/net/nf_conntrack")
	return r.stdout, r.code == 0
}

// ---- the helper program ---------------------------------------------------

// helper returns the path of the tests' helper program
// (internal/cmd/bt-helper), which each test puts into its containers' rootfs.
// `make integration` and the VM runner build it once and name it in
// BERTH_TEST_HELPER; a plain `go test` run builds it into the test's temp dir.
func (h *netHost) helper() string {
	h.t.Helper()
	if h.helperPath != "" {
		return h.helperPath // handed over by withT
	}
	h.helperOnce.Do(func() {
		if p := os.Getenv("BERTH_TEST_HELPER"); p != "" {
			if _, err := os.Stat(p); err != nil {
				h.helperErr = fmt.Errorf("BERTH_TEST_HELPER: %w", err)
				return
			}
			h.helperPath = p
			return
		}
		out := filepath.Join(h.mkdir("helper"), "bt-helper")
		r := goBuild(h.t, runOpts{dir: "..", timeout: 2 * time.Minute, env: []string{"CGO_ENABLED=0"}}, "-trimpath", "-o", out, "./internal/cmd/bt-helper")
		if r.code != 0 {
			h.helperErr = fmt.Errorf("building the test helper: %s", r)
			return
		}
		h.helperPath = out
	})
	if h.helperErr != nil {
		h.t.Fatalf("the network tests' helper: %v", h.helperErr)
	}
	return h.helperPath
}

// goBuild runs `go build args...` with o, using the Go toolchain on PATH,
// or else the one that built the tests.
func goBuild(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	return runCmd(t, o, goBin, append([]string{"build"}, args...)...)
}
