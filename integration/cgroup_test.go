package integration

// Resource limits that must hold on every cgroup layout: each test reads the
// v1 or the v2 file of a setting (cgroupfs_test.go) and checks that the
// kernel enforces it. conformance/vm runs these on a pure v1 and a pure v2
// kernel; on the CI machine they run on its own layout.

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/types"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/testenv"
)

// withResources changes linux.resources of the spec, keeping its devices.
func withResources(f func(r *specs.LinuxResources)) func(*specs.Spec) {
	return func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		f(s.Linux.Resources)
	}
}

// hostHasSwap tells whether swap is on: a memory limit alone then lets a
// process swap instead of being OOM-killed.
func hostHasSwap(t *testing.T) bool {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == "SwapTotal" {
			kb, _, _ := strings.Cut(strings.TrimSpace(v), " ")
			return kb != "0"
		}
	}
	return false
}

// cgStats runs `events --stats` and returns its data, decoded into runc's
// own types (github.com/opencontainers/runc/types), whose JSON berth
// prints: a field the runtime names differently from runc reads as zero.
func (e *env) cgStats(id string) types.Stats {
	e.t.Helper()
	r := e.mustBerth("events", "--stats", id)
	var ev struct {
		Type string       `json:"type"`
		ID   string       `json:"id"`
		Data *types.Stats `json:"data"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &ev); err != nil || ev.Type != "stats" || ev.ID != id || ev.Data == nil {
		e.t.Fatalf("events --stats %s: expected one JSON stats event with data (err %v), got %q", id, err, r.stdout)
	}
	return *ev.Data
}

// TestCgroupLayout checks where a container's cgroups are, hierarchy by
// hierarchy, against the rule of runc's cgroupfs driver and against
// Debian's runc running the same bundle: without linux.cgroupsPath, ID
// under the runtime's own cgroup (libcontainer's relative path: on a host
// that puts the runtime in a cgroup of its own, the container goes there
// too); with a relative cgroupsPath, that path under it; with an absolute
// one, that path from the hierarchy's root as this host mounts it.
func TestCgroupLayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Logf("host cgroup layout: %v", layoutOf(t))
	const runc = "/usr/sbin/runc"
	runtimes := []string{"berth", "runc"}
	if _, err := os.Stat(runc); err != nil {
		// berth is still checked against the rule (the test VMs have no
		// runc); only the side-by-side comparison needs runc.
		if testenv.InCI() {
			testenv.Missing(t, "%s is not installed (apt-get install runc), nothing to compare with", runc)
		}
		t.Logf("%s is not installed: berth is checked against runc's rule, not side by side with runc", runc)
		runtimes = runtimes[:1]
	}
	// berth and runc run as children of this test, in its cgroups.
	own := procCgroups(t, "self")
	mounts := cgroupMounts(t)
	for _, tc := range []struct {
		name string
		path func(id string) string // linux.cgroupsPath
		want func(key, id string) string
	}{
		{"no cgroupsPath", func(string) string { return "" },
			func(key, id string) string { return path.Join(own[key], id) }},
		{"relative cgroupsPath", func(id string) string { return id },
			func(key, id string) string { return path.Join(own[key], id) }},
		{"absolute cgroupsPath", func(id string) string { return "/" + id },
			func(key, id string) string { return path.Join(hierarchyRoot(t, mounts, key), id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]map[string]string{} // runtime -> hierarchy -> path, with the id as ID
			for _, rt := range runtimes {
				id := randomID("bt-")
				bundle := e.bundle(func(s *specs.Spec) { s.Linux.CgroupsPath = tc.path(id) })
				var pid int
				if rt == "berth" {
					e.track(e.bin, e.root, id)
					e.mustBerth("run", "-d", "-b", bundle, id)
					pid = e.state(id).Pid
				} else {
					runcRoot := e.mkdir("runc-root")
					e.track(runc, runcRoot, id)
					if r := runCmd(t, runOpts{}, runc, "--root", runcRoot, "run", "-d", "-b", bundle, id); r.code != 0 {
						t.Fatalf("runc run -d failed, cannot compare: %s", r)
					}
					var st struct{ Pid int }
					if r := runCmd(t, runOpts{}, runc, "--root", runcRoot, "state", id); r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
						t.Fatalf("runc state: %s", r)
					}
					pid = st.Pid
				}
				cgs := procCgroups(t, strconv.Itoa(pid))
				if len(cgs) == 0 {
					t.Fatalf("%s: /proc/%d/cgroup lists no hierarchy", rt, pid)
				}
				got[rt] = map[string]string{}
				for key, p := range cgs {
					if want := tc.want(key, id); rt == "berth" && p != want {
						t.Errorf("cgroupsPath %q: hierarchy %q: expected the container in %s, got %s", tc.path(id), key, want, p)
					}
					got[rt][key] = strings.ReplaceAll(p, id, "ID")
				}
			}
			if len(runtimes) > 1 && !maps.Equal(got["berth"], got["runc"]) {
				t.Errorf("cgroupsPath %q: expected berth's cgroups where runc puts them (ID for the container id):\nberth: %v\nrunc:  %v", tc.path("ID"), got["berth"], got["runc"])
			}
		})
	}
}

// procCgroups reads /proc/PID/cgroup: the cgroup path of each hierarchy,
// keyed by its controllers as listed there ("cpu,cpuacct", "name=systemd",
// "" for cgroup v2).
func procCgroups(t *testing.T, pid string) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if parts := strings.SplitN(l, ":", 3); len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out
}

// hierarchyRoot is the cgroup path at which this host mounts the
// hierarchy key (as procCgroups keys it): an absolute cgroupsPath is
// taken from there.
func hierarchyRoot(t *testing.T, mounts []cgroupMount, key string) string {
	t.Helper()
	for _, m := range mounts {
		if key == "" && m.v2 {
			return m.root
		}
		if key != "" && !m.v2 && isSubset(strings.Split(key, ","), m.options) {
			return m.root
		}
	}
	t.Fatalf("no mount of the cgroup hierarchy %q in /proc/self/mountinfo", key)
	return ""
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func TestCgroupMemoryLimitOOM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const limit = 64 << 20
	swapOn := hostHasSwap(t)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.Memory = &specs.LinuxMemory{Limit: ptr(int64(limit))}
		if swapOn {
			// Memory+swap equal to memory: no swap at all.
			r.Memory.Swap = ptr(int64(limit))
		}
	})))
	if got := cgMemoryMax(t, pid); got != strconv.Itoa(limit) {
		t.Errorf("memory limit %d from config.json: expected the cgroup's limit %d, got %q", limit, limit, got)
	}
	if st := e.cgStats(id); st.Memory.Usage.Limit != limit || st.Memory.Usage.Usage == 0 {
		t.Errorf("events --stats: expected data.memory.usage.limit %d and a usage, got %+v", limit, st.Memory.Usage)
	}

	// dd allocates a buffer of bs bytes and fills it from /dev/zero.
	r := e.berth("exec", id, "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1")
	wantCode(t, r, 0, "exec of dd with an 8M buffer under a 64M limit")
	// `events` (without --stats) reports each OOM kill as it happens. It
	// watches for them before its first tick: wait for the first stats.
	events := e.startBerth(runOpts{}, "events", "--interval", "1s", id)
	defer func() {
		_ = events.cmd.Process.Kill()
		events.wait()
	}()
	waitFileContains(t, events.outPath, "\n")
	before := cgOOMKills(t, pid)
	r = e.berth("exec", id, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	wantCode(t, r, 137, "exec of dd with a 128M buffer under a 64M limit (expected the OOM killer's SIGKILL)")
	if after := cgOOMKills(t, pid); after <= before {
		t.Errorf("after dd beyond the limit: expected the cgroup's oom_kill counter to grow from %d, got %d", before, after)
	}
	if out := waitFileContains(t, events.outPath, `"type":"oom"`); !strings.Contains(out, id) {
		t.Errorf("events: expected the oom event to name %s, got %q", id, out)
	}
	// Only the offender died: the container goes on.
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after the OOM kill of an exec'd process: expected the container running with pid %d, got %+v", pid, st)
	}
	wantCode(t, e.berth("exec", id, "true"), 0, "exec after the OOM kill")
}

func TestCgroupPidsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Room for berth's own init process (a Go program with a few threads,
	// which count as tasks) while it execs.
	const limit = 32
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.Pids = &specs.LinuxPids{Limit: ptr(int64(limit))}
	})))
	if got := cgPidsMax(t, pid); got != strconv.Itoa(limit) {
		t.Errorf("pids limit %d from config.json: expected pids.max %d, got %q", limit, limit, got)
	}
	if st := e.cgStats(id); st.Pids.Limit != limit {
		t.Errorf("events --stats: expected data.pids.limit %d, got %+v", limit, st.Pids)
	}
	// Fork twice the limit of sleeping children: busybox sh stops at the
	// first fork that fails ("can't fork"). The children must not hold
	// exec's stdout and stderr, or exec (like runc's) waits for them.
	r := e.berth("exec", id, "sh", "-c", `i=0; while [ $i -lt 64 ]; do sleep 600 </dev/null >/dev/null 2>&1 & i=$((i+1)); done; echo "forked $i"`)
	wantFail(t, r, "exec of a shell forking 64 children under pids.max 32")
	if !containsFold(r.combined(), "fork") || strings.Contains(r.stdout, "forked 64") {
		t.Errorf("forking beyond pids.max %d: expected a fork failure, got %s", limit, r)
	}
	if n := cgPidsCurrent(t, pid); n > limit || n < limit/2 {
		t.Errorf("after forking up to the limit: expected pids.current between %d and %d, got %d", limit/2, limit, n)
	}
	if n := cgPidsMaxEvents(t, pid); n < 1 {
		t.Errorf("after forking beyond the limit: expected pids.events max >= 1, got %d", n)
	}
	if st := e.cgStats(id); st.Pids.Limit != limit || st.Pids.Current > limit || st.Pids.Current == 0 {
		t.Errorf("events --stats at the limit: expected data.pids limit %d and 0 < current <= %d, got %+v", limit, limit, st.Pids)
	}
}

func TestCgroupCPUQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.CPU = &specs.LinuxCPU{Quota: ptr(int64(20000)), Period: ptr(uint64(100000))}
	})))
	if got := cgCPUMax(t, pid); got != "20000 100000" {
		t.Errorf("cpu quota 20000/100000 from config.json: expected cpu.max %q, got %q", "20000 100000", got)
	}
	// A busy loop under a 20% quota is throttled as soon as it gets a fifth
	// of a CPU within one 100ms period. How soon that is depends on the
	// host's load (a CI machine running the load tests alongside may give it
	// less), so the test watches for the first throttled period rather than
	// giving the loop a fixed time. busybox timeout execs the loop, so the
	// pid file names the loop itself; timeout's watcher SIGKILLs it after
	// 60s should the test die before it does.
	pidFile := filepath.Join(e.mkdir("busy"), "loop.pid")
	r := e.berth("exec", "-d", "--pid-file", pidFile, id, "timeout", "-s", "KILL", "60", "sh", "-c", "while :; do :; done")
	wantCode(t, r, 0, "exec -d of a busy loop under timeout -s KILL 60")
	loop := readPidFile(t, pidFile)
	defer syscall.Kill(loop, syscall.SIGKILL)
	n := 0
	for deadline := time.Now().Add(60 * time.Second); n < 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n = cgCPUThrottled(t, pid)
	}
	if n < 1 {
		t.Errorf("after up to 60s of a busy loop under a 20%% quota: expected cpu.stat nr_throttled >= 1, got %d", n)
	}
	if err := syscall.Kill(loop, syscall.SIGKILL); err != nil {
		t.Errorf("killing the busy loop (pid %d): %v", loop, err)
	}
	// The same counter through the runtime; it only grows, and the idle
	// container adds no throttled periods after the loop.
	if th := e.cgStats(id).CPU.Throttling; th.ThrottledPeriods < uint64(n) || th.ThrottledPeriods == 0 || th.Periods < th.ThrottledPeriods {
		t.Errorf("events --stats after the busy loop: expected data.cpu.throttling with throttledPeriods >= nr_throttled %d (and > 0) and periods >= throttledPeriods, got %+v", n, th)
	}
}

func TestCgroupUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.Memory = &specs.LinuxMemory{Limit: ptr(int64(128 << 20))}
		r.Pids = &specs.LinuxPids{Limit: ptr(int64(64))}
		r.CPU = &specs.LinuxCPU{Quota: ptr(int64(20000)), Period: ptr(uint64(100000))}
	})))
	check := func(what, mem, pids, cpu string) {
		t.Helper()
		if got := cgMemoryMax(t, pid); got != mem {
			t.Errorf("%s: expected memory limit %s, got %s", what, mem, got)
		}
		if got := cgPidsMax(t, pid); got != pids {
			t.Errorf("%s: expected pids.max %s, got %s", what, pids, got)
		}
		if got := cgCPUMax(t, pid); got != cpu {
			t.Errorf("%s: expected cpu.max %q, got %q", what, cpu, got)
		}
	}
	check("config.json", "134217728", "64", "20000 100000")

	e.mustBerth("update", "--memory", "64M", id)
	check("update --memory 64M", "67108864", "64", "20000 100000")
	if st := e.cgStats(id); st.Memory.Usage.Limit != 64<<20 {
		t.Errorf("update --memory 64M: expected events data.memory.usage.limit %d, got %d", 64<<20, st.Memory.Usage.Limit)
	}

	e.mustBerth("update", "--pids-limit", "10", id)
	check("update --pids-limit 10", "67108864", "10", "20000 100000")
	if st := e.cgStats(id); st.Pids.Limit != 10 {
		t.Errorf("update --pids-limit 10: expected events data.pids.limit 10, got %d", st.Pids.Limit)
	}

	e.mustBerth("update", "--cpu-quota", "50000", "--cpu-period", "200000", id)
	check("update --cpu-quota 50000 --cpu-period 200000", "67108864", "10", "50000 200000")
	e.mustBerth("update", "--cpu-quota", "30000", id)
	check("update --cpu-quota 30000 (period kept)", "67108864", "10", "30000 200000")

	res := e.writeFile("resources.json", `{"memory":{"limit":100663296},"pids":{"limit":30},"cpu":{"quota":40000,"period":100000}}`)
	e.mustBerth("update", "-r", res, id)
	check("update -r FILE", "100663296", "30", "40000 100000")

	r := e.berthOpts(runOpts{stdin: strings.NewReader(`{"pids":{"limit":20}}`)}, "update", "-r", "-", id)
	wantCode(t, r, 0, "update -r - (pids on stdin)")
	check("update -r - (pids only)", "100663296", "20", "40000 100000")

	// Lifting the limits again.
	e.mustBerth("update", "--memory", "-1", id)
	check("update --memory -1", "max", "20", "40000 100000")
	e.mustBerth("update", "--cpu-quota", "-1", id)
	check("update --cpu-quota -1", "max", "20", "max 100000")
	e.mustBerth("update", "--pids-limit", "-1", id)
	check("update --pids-limit -1", "max", "max", "max 100000")

	// The container still works after all that.
	wantCode(t, e.berth("exec", id, "true"), 0, "exec after updates")
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after updates: expected the container running with pid %d, got %+v", pid, st)
	}
}

func TestCgroupFreeze(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	e.mustBerth("pause", id)
	if st := e.status(id); st != "paused" {
		t.Errorf("after pause: expected status paused, got %s", st)
	}
	if fs := cgFreezerState(t, pid); fs != "FROZEN" {
		t.Errorf("after pause: expected the cgroup frozen, got %s", fs)
	}
	e.mustBerth("resume", id)
	if st := e.status(id); st != "running" {
		t.Errorf("after resume: expected status running, got %s", st)
	}
	if fs := cgFreezerState(t, pid); fs != "THAWED" {
		t.Errorf("after resume: expected the cgroup thawed, got %s", fs)
	}
	wantCode(t, e.berth("exec", id, "true"), 0, "exec after resume")

	// A frozen container can be force-deleted (its processes are killed
	// while frozen); the cleanup checks that nothing of it is left.
	e.mustBerth("pause", id)
	wantFail(t, e.berth("delete", id), "delete (without -f) of a paused container")
	e.mustBerth("delete", "-f", id)
	wantCode(t, e.berth("state", id), 1, "state after delete -f of a paused container")
	assertNoLeftovers(t, e.root, id)
}

func TestCgroupCPUWeightAndCpuset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Cpus: "0"}
	})))
	// v2 has cpu.weight (1-10000) where v1 has cpu.shares: the runtime
	// converts with the function of github.com/opencontainers/cgroups.
	shares := func(what string, want uint64) {
		t.Helper()
		got := readCgroupFileOf(t, pid, "cpu", "cpu.shares", "cpu.weight")
		if layoutOf(t) == cgroupUnified {
			want = cgroups.ConvertCPUSharesToCgroupV2Value(want)
		}
		if got != strconv.FormatUint(want, 10) {
			t.Errorf("%s: expected the cgroup's CPU weight %d, got %q", what, want, got)
		}
	}
	cpus := func(what, want string) {
		t.Helper()
		if got := readCgroupFileOf(t, pid, "cpuset", "cpuset.cpus", "cpuset.cpus"); got != want {
			t.Errorf("%s: expected cpuset.cpus %q, got %q", what, want, got)
		}
	}
	shares("cpu shares 512 from config.json", 512)
	cpus("cpus 0 from config.json", "0")

	e.mustBerth("update", "--cpu-share", "2048", id)
	shares("update --cpu-share 2048", 2048)
	if runtime.NumCPU() >= 2 {
		e.mustBerth("update", "--cpuset-cpus", "1", id)
		cpus("update --cpuset-cpus 1", "1")
		// The container's processes follow.
		r := e.berth("exec", id, "sh", "-c", "grep Cpus_allowed_list /proc/self/status")
		if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 2 || f[1] != "1" {
			t.Errorf("after update --cpuset-cpus 1: expected an exec'd process allowed on CPU 1 only, got %s", r)
		}
	}
}
