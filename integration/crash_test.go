package integration

// The crash matrix: berth and berth-net, built with the crashpoints tag,
// SIGKILL themselves at each named step of create and delete (see package
// internal/crashpoint). After each death, `berth delete -f ID` and
// `berth gc` must leave nothing of the container on the host, and a new
// container with the same id and the same published port must work.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The variables crashpoint.Hit reads (crashpoint.EnvVar, ParentEnvVar).
const (
	crashEnv       = "BERTH_CRASH_AT"
	crashParentEnv = "BERTH_CRASH_PARENT"
)

// crashPoint is one row of the matrix.
type crashPoint struct {
	name  string // the BERTH_CRASH_AT value
	who   string // the process that dies: "berth" or "berth-net"
	stage string // "create" (run -d) or "delete" (delete -f)
	// fw limits the point to one firewall backend ("" = both).
	fw string
	// killerHook: no crash point of berth's own exists there, so a
	// createRuntime hook, run after berth-net's, SIGKILLs its parent, berth.
	// It runs after libcontainer made the cgroup and started the init, and
	// before the init's state is saved.
	killerHook bool
	// proposed marks a point asked for in cmd/berth but not there yet: it is
	// skipped, saying so, while the binary does not contain its name.
	proposed string
	// powerCut kills berth too (BERTH_CRASH_PARENT=1), just before
	// berth-net: berth cannot undo the failed hook, so only gc can.
	powerCut bool
}

// label names the row in the test's output.
func (p crashPoint) label() string {
	if p.powerCut {
		return p.name + "+berth"
	}
	return p.name
}

// crashRows is crashPoints with a power-cut row after each berth-net setup
// point. A kill of berth-net alone tests berth's own undo (it destroys the
// container and runs the teardown hook); the power cut tests gc against a
// setup stopped at that step. Teardown points need no such row: berth has
// nothing left to do after its poststop hooks either way.
func crashRows() []crashPoint {
	var rows []crashPoint
	for _, p := range crashPoints {
		rows = append(rows, p)
		if p.who == "berth-net" && p.stage == "create" {
			p.powerCut = true
			rows = append(rows, p)
		}
	}
	return rows
}

// crashPoints are berth's create and delete, step by step.
var crashPoints = []crashPoint{
	// berth create: libcontainer made the state directory, no state.json yet.
	{name: "create.statedir", who: "berth", stage: "create"},
	// berth create: berth-hooks.json, then berth-recovery.json, complete
	// under a temporary name in the state directory, not renamed yet.
	{name: "create.hooks.temp", who: "berth", stage: "create"},
	{name: "create.recovery.temp", who: "berth", stage: "create"},
	// berth create: after the cgroup was made and the init started, with the
	// network fully set up by berth-net, before the state is saved.
	{name: "create.runtime-hooks", who: "berth", stage: "create", killerHook: true},
	// berth create: the init runs and its state is saved, berth has not
	// returned yet (pid file, console, poststart).
	{name: "create.started", who: "berth", stage: "create"},
	// berth-net setup, in setup order (hooks/network/setup.go).
	{name: "net.state.temp", who: "berth-net", stage: "create"}, // the record's temporary file, before its rename
	{name: "net.setup.record", who: "berth-net", stage: "create"},
	{name: "fw.iptables.chains", who: "berth-net", stage: "create", fw: "iptables"},
	{name: "fw.iptables.network-rule.0", who: "berth-net", stage: "create", fw: "iptables"},
	{name: "fw.iptables.network-rule.4", who: "berth-net", stage: "create", fw: "iptables"},
	{name: "fw.iptables.network-rule.8", who: "berth-net", stage: "create", fw: "iptables"},
	{name: "net.setup.network-rules", who: "berth-net", stage: "create"},
	{name: "net.setup.bridge-unmarked", who: "berth-net", stage: "create"}, // made, not yet marked as the root's
	{name: "net.setup.bridge", who: "berth-net", stage: "create"},
	{name: "net.setup.lease-index", who: "berth-net", stage: "create"},
	{name: "net.setup.lease", who: "berth-net", stage: "create"},
	{name: "net.setup.ports-index", who: "berth-net", stage: "create"},
	{name: "net.setup.ports", who: "berth-net", stage: "create"},
	{name: "net.setup.veth-unmarked", who: "berth-net", stage: "create"}, // made on the bridge, not yet marked
	{name: "net.setup.veth", who: "berth-net", stage: "create"},
	{name: "net.setup.address", who: "berth-net", stage: "create"},
	{name: "net.setup.route", who: "berth-net", stage: "create"},
	{name: "net.setup.publish", who: "berth-net", stage: "create"},
	// berth delete -f: the init is dead, nothing destroyed yet.
	{name: "delete.killed", who: "berth", stage: "delete"},
	// berth delete -f: cgroups and state gone, poststop hooks not run.
	{name: "delete.destroyed", who: "berth", stage: "delete"},
	// berth-net teardown (the poststop hook), in teardown order.
	{name: "net.teardown.unpublish", who: "berth-net", stage: "delete"},
	{name: "net.teardown.veth", who: "berth-net", stage: "delete"},
	{name: "net.teardown.ports", who: "berth-net", stage: "delete"},
}

// buildCrashBinaries builds berth and berth-net with the crashpoints tag
// into dir (side by side: berth finds berth-net beside itself).
func buildCrashBinaries(t *testing.T, dir string) {
	t.Helper()
	module, err := filepath.Abs("..") // go test runs in the package's directory
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(module, "cmd", "berth")); err != nil {
		t.Fatalf("building the crash binaries: expected the module root at %s: %v", module, err)
	}
	r := goBuild(t, runOpts{dir: module, timeout: 10 * time.Minute, env: []string{"CGO_ENABLED=1"}},
		"-trimpath", "-buildvcs=false", "-tags", "crashpoints seccomp urfave_cli_no_docs runc_nocriu", "-o", dir+"/", "./cmd/berth", "./cmd/berth-net")
	if r.code != 0 {
		t.Fatalf("building berth and berth-net with -tags crashpoints: %s", r)
	}
}

// binaryHas reports whether the binary at path contains s (a crash point's
// name is a string literal in it).
func binaryHas(t *testing.T, path, s string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, []byte(s))
}

// TestCrashMatrix kills berth or berth-net at every crash point, for each
// firewall backend, and checks that `berth delete -f` and `berth gc` leave
// nothing behind and that the id and port can be used again at once.
func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	requireEnv(t)
	requireNetTools(t)
	dir, err := os.MkdirTemp("", "bt-crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	start := time.Now()
	buildCrashBinaries(t, dir)
	t.Logf("built berth and berth-net with -tags crashpoints in %v", time.Since(start).Round(time.Millisecond))
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			testCrashMatrix(t, fw, dir)
		})
	}
}

func testCrashMatrix(t *testing.T, fw, binDir string) {
	h := newNetHost(t)
	h.shared.bin = filepath.Join(binDir, "berth") // every berth run of this test, cleanups included
	h.helper()                                    // built once, before the first point
	var killed, skipped, leftovers int
	start := time.Now()
	for i, p := range crashRows() {
		if p.fw != "" && p.fw != fw {
			continue
		}
		bin := filepath.Join(binDir, p.who)
		literal := p.name
		if p.killerHook {
			literal = ""
		} else if strings.HasPrefix(p.name, "fw.iptables.network-rule.") {
			literal = "fw.iptables.network-rule." // the index is appended at run time
		}
		if literal != "" && !binaryHas(t, bin, literal) {
			if p.proposed != "" {
				skipped++
				t.Logf("%-34s skipped: the point is not in %s yet (proposed: %s)", p.label(), p.who, p.proposed)
				continue
			}
			t.Errorf("%s: no such crash point in %s: the matrix is out of date", p.name, p.who)
			continue
		}
		t.Run(p.label(), func(t *testing.T) {
			killed++ // counted here: -run may filter the subtest out
			before, after := crashOne(t, h.withT(t), fw, p, i)
			leftovers += len(after)
			left, crashLeft := describeLeftovers(after), describeLeftovers(before)
			who := p.who
			if p.powerCut {
				who = "berth and berth-net"
			}
			t.Logf("%-34s %s killed during %s; the crash left: %s; after delete -f and gc: %s", p.label(), who, p.stage, crashLeft, left)
		})
	}
	t.Logf("crash matrix, %s: %d points killed, %d skipped, leftovers found after delete -f + gc: %d (%v)",
		fw, killed, skipped, leftovers, time.Since(start).Round(time.Second))
}

// crashOne runs one point on a network of its own: kill, look at what is
// left, recover with delete -f and gc, look again, then reuse the id and
// port. It returns what the crash left and what recovery left.
func crashOne(t *testing.T, h *netHost, fw string, p crashPoint, i int) (before, after []string) {
	netName := fmt.Sprintf("cm%s%02d", h.sfx[:4], i)
	n := h.createNetwork(netName, "--firewall", fw)
	port := 40000 + i
	publish := []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"}
	id := randomID("bt-")
	// Runs after the id's own cleanup (delete -f, then the leftover check,
	// which reports any): rmdir the cgroups a failed recovery left, which
	// hold no process by then, so that the host is left as found.
	t.Cleanup(func() {
		for _, d := range cgroupDirsNamed(id) {
			if err := os.Remove(d); err != nil {
				t.Logf("cleanup: removing leftover cgroup %s: %v", d, err)
			}
		}
	})
	h.trackID(id)

	mods := []func(*specs.Spec){}
	var berthEnv []string
	switch {
	case p.killerHook:
		mods = append(mods, func(s *specs.Spec) {
			s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, specs.Hook{
				Path: "/bin/sh", Args: []string{"sh", "-c", "kill -KILL $PPID"}})
		})
	case p.who == "berth":
		berthEnv = []string{crashEnv + "=" + p.name}
	case p.powerCut:
		mods = append(mods, func(s *specs.Spec) {
			addHookEnv(s.Hooks.CreateRuntime, crashEnv+"="+p.name, crashParentEnv+"=1")
		})
	case p.stage == "create":
		mods = append(mods, func(s *specs.Spec) { addHookEnv(s.Hooks.CreateRuntime, crashEnv+"="+p.name) })
	default:
		mods = append(mods, func(s *specs.Spec) { addHookEnv(s.Hooks.Poststop, crashEnv+"="+p.name) })
	}
	crashBundle := h.bundle(netCtr{spec: publish, mods: mods})

	var r result
	if p.stage == "create" {
		r = h.berthEnv(berthEnv, "run", "-d", "-b", crashBundle, id)
		if r.code == 0 {
			t.Errorf("%s: expected run -d to fail when %s dies, it succeeded: %s", p.label(), p.who, r)
		}
	} else {
		h.mustBerth("run", "-d", "-b", crashBundle, id)
		r = h.berthEnv(berthEnv, "delete", "-f", id)
	}
	// Prove the process died at the point: berth by the signal's exit
	// status, berth-net through the hook error berth reports.
	if p.who == "berth" || p.powerCut {
		if !strings.Contains(r.stderr, "[killed by signal killed]") {
			t.Errorf("%s: expected berth to be killed by SIGKILL, got %s", p.label(), r)
		}
	} else if !strings.Contains(r.stderr, "signal: killed") {
		t.Errorf("%s: expected berth to report its berth-net hook killed by SIGKILL, got %s", p.label(), r)
	}
	addr := leasedAddr(h, netName, id)
	before = h.crashLeftovers(id, addr, port)

	if r := h.berth("delete", "-f", id); r.code != 0 {
		t.Errorf("%s: recovery: delete -f %s: expected exit 0, got %s", p.label(), id, r)
	}
	if r := h.berth("gc"); r.code != 0 {
		t.Errorf("%s: recovery: gc: expected exit 0, got %s", p.label(), r)
	}
	after = h.crashLeftovers(id, addr, port)
	for _, l := range after {
		t.Errorf("%s: leftover after delete -f and gc: %s", p.label(), l)
	}

	// The same id and the same host port work again, end to end.
	tok := token()
	clean := h.bundle(netCtr{spec: publish, args: webServer, files: webFiles(tok)})
	if r := h.berth("run", "-d", "-b", clean, id); r.code != 0 {
		t.Fatalf("%s: after recovery, run -d with the same id %s and port %d: %s", p.label(), id, port, r)
	}
	wantTCP(t, h.otherSide(), hostAddr, port, tok, p.label()+": the same id and published port after recovery")
	reused := h.addrOf(netName, id)
	h.mustBerth("delete", "-f", id)
	for _, l := range h.crashLeftovers(id, reused, port) {
		t.Errorf("%s: leftover after deleting the reused container: %s", p.label(), l)
	}
	if r := h.berthNet("network", "rm", netName); r.code != 0 {
		t.Errorf("%s: network rm %s: %s", p.label(), netName, r)
	}
	h.assertNetworkGone(n, true)
	return before, after
}

// addHookEnv adds kv to the env of every berth-net hook in hooks.
func addHookEnv(hooks []specs.Hook, kv ...string) {
	for i := range hooks {
		if filepath.Base(hooks[i].Path) == "berth-net" {
			hooks[i].Env = append(hooks[i].Env, kv...)
		}
	}
}

// leasedAddr is the address container id holds or held on network
// netName, from its record or its lease ("" if it never got one).
func leasedAddr(h *netHost, netName, id string) string {
	if addr := h.recordAddr(id); addr != "" {
		return addr
	}
	data, _ := os.ReadFile(filepath.Join(h.netRoot, "ipam", netName, "owners", id))
	return strings.TrimSpace(string(data))
}

// describeLeftovers joins what crashLeftovers found for the log, the
// cgroup directories (one per hierarchy) folded into one entry.
func describeLeftovers(left []string) string {
	var out, cgroups []string
	for _, l := range left {
		if d, ok := strings.CutPrefix(l, "cgroup "); ok {
			cgroups = append(cgroups, d)
			continue
		}
		out = append(out, l)
	}
	if len(cgroups) > 0 {
		out = append([]string{fmt.Sprintf("%d cgroup dirs (%s, ...)", len(cgroups), cgroups[0])}, out...)
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

// crashLeftovers lists, one string each, what is left of container id in
// the test host: state directory, cgroups, mounts, processes, berth-net
// state (record, lease, port reservation), veths, and firewall rules for
// its tag, address or host port.
func (h *netHost) crashLeftovers(id, addr string, port int) []string {
	h.t.Helper()
	var left []string
	if _, err := os.Lstat(filepath.Join(h.root, id)); err == nil {
		ents, _ := os.ReadDir(filepath.Join(h.root, id))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		left = append(left, fmt.Sprintf("state dir %s %v", filepath.Join(h.root, id), names))
	}
	for _, d := range cgroupDirsNamed(id) {
		left = append(left, "cgroup "+d)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, id) {
				left = append(left, "mount "+l)
			}
		}
	}
	for _, p := range processesInCgroupOf(id) {
		left = append(left, "process "+p)
	}
	for _, m := range h.netRootMentions(id) {
		name, _, _ := strings.Cut(m, " ") // the file, without its content
		left = append(left, "berth-net state "+name)
	}
	for _, v := range h.vethsOnHost() {
		left = append(left, "veth "+v)
	}
	rules := h.rules()
	if strings.Contains(rules, "berth:"+id) {
		left = append(left, "firewall rules tagged berth:"+id)
	}
	if addr != "" && addrRE(addr).MatchString(rules) {
		left = append(left, "firewall rules for its address "+addr)
	}
	if regexp.MustCompile(`\b` + strconv.Itoa(port) + `\b`).MatchString(rules) {
		left = append(left, "firewall rules for its host port "+strconv.Itoa(port))
	}
	return left
}
