package integration

// Load: many bridge containers at once, the same ids churned, and
// containers that end in unusual ways (their process exits, the OOM killer,
// a hook that times out). Everything runs in a test host namespace, and
// ends with nothing left.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// loadCmdTimeout bounds each berth run of the load tests: with a hundred
// berth processes on two cores, one waits its turn on the CPU and on the
// network's locks far longer than alone.
const loadCmdTimeout = 3 * time.Minute

// loadServer serves /www over HTTP on port 80 from busybox httpd (which
// puts itself in the background), with `sleep` as the container's init: a
// few hundred KiB per container, where the Go test helper costs more.
var loadServer = []string{"sh", "-c", "httpd -p 80 -h /www && exec sleep 3600"}

// bundleFactory makes many bundles quickly and from any goroutine: one
// `berth spec` gives the template, and each bundle is a private rootfs
// (hardlinked, as privateRootfs does) and the template's config.json with
// its own published port.
type bundleFactory struct {
	h    *netHost
	tmpl []byte // config.json with publishPlaceholder as the --publish value
}

// publishPlaceholder is the template's --publish value, replaced per bundle.
const publishPlaceholder = "1:80"

func (h *netHost) bundleFactory(netName string, args []string) *bundleFactory {
	h.t.Helper()
	dir := h.bundle(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", publishPlaceholder}, args: args})
	tmpl, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	return &bundleFactory{h: h, tmpl: tmpl}
}

// make writes a bundle publishing hostPort to the container's port 80,
// whose /www/index.html holds tok. It returns errors rather than failing
// the test, so that it can run outside the test's goroutine.
func (f *bundleFactory) make(hostPort int, tok string) (string, error) {
	var s specs.Spec
	if err := json.Unmarshal(f.tmpl, &s); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(f.h.base, "lb")
	if err != nil {
		return "", err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := exec.Command("cp", "-al", f.h.rootfs, rootfs).Run(); err != nil {
		// Hardlinks cannot cross filesystems: make a real copy instead.
		_ = os.RemoveAll(rootfs)
		if out, err := exec.Command("cp", "-a", f.h.rootfs, rootfs).CombinedOutput(); err != nil {
			return "", fmt.Errorf("cp -a %s: %v: %s", f.h.rootfs, err, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "www"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "www", "index.html"), []byte(tok+"\n"), 0o644); err != nil {
		return "", err
	}
	s.Root.Path = rootfs
	replaced := false
	for i, hk := range s.Hooks.CreateRuntime {
		for j, a := range hk.Args {
			if a == publishPlaceholder {
				s.Hooks.CreateRuntime[i].Args[j] = strconv.Itoa(hostPort) + ":80"
				replaced = true
			}
		}
	}
	if !replaced {
		return "", fmt.Errorf("the template's createRuntime hooks have no --publish %s: %+v", publishPlaceholder, s.Hooks.CreateRuntime)
	}
	data, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
}

// berthLong runs berth in the test host like h.berth, with the load
// tests' longer timeout; safe from any goroutine.
func (h *netHost) berthLong(a ...string) result {
	return h.berthOpts(runOpts{timeout: loadCmdTimeout}, a...)
}

// parallel runs f(0..n-1) on at most width goroutines and waits for all.
func parallel(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// TestLoadParallel100 runs 100 bridge containers at once, each publishing
// its own port: they get 100 distinct addresses, each answers through its
// port from the other host, and deleting them all at once leaves nothing.
func TestLoadParallel100(t *testing.T) {
	t.Parallel()
	const n = 100
	h := newNetHost(t)
	netName := "ld" + h.sfx[:4]
	net := h.createNetwork(netName) // the default backend
	f := h.bundleFactory(netName, loadServer)

	ids, toks, bundles, errs := make([]string, n), make([]string, n), make([]string, n), make([]error, n)
	t0 := time.Now()
	parallel(n, 8, func(i int) {
		toks[i] = token()
		bundles[i], errs[i] = f.make(30000+i, toks[i])
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
	}
	for i := range ids {
		ids[i] = h.newID()
	}
	prep := time.Since(t0)

	results := make([]result, n)
	t0 = time.Now()
	parallel(n, n, func(i int) { results[i] = h.berthLong("run", "-d", "-b", bundles[i], ids[i]) })
	created := time.Since(t0)
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("%d at once: run -d %s: %s", n, ids[i], r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	h.assertDistinctAddresses(net, n)

	// Each container through its own port, from the other host: a real TCP
	// exchange that only the right container can answer (its token).
	t0 = time.Now()
	parallel(n, 10, func(i int) {
		wantTCP(t, h.otherSide(), hostAddr, 30000+i, toks[i], fmt.Sprintf("container %d of %d through its published port", i, n))
	})
	reached := time.Since(t0)

	t0 = time.Now()
	parallel(n, n, func(i int) { results[i] = h.berthLong("delete", "-f", ids[i]) })
	deleted := time.Since(t0)
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("%d at once: delete -f %s: %s", n, ids[i], r)
		}
	}
	h.assertNothingOnNetwork(fmt.Sprintf("after deleting %d at once", n), netName, ids)
	t.Logf("%d bridge containers: bundles made in %v, all run -d at once in %v, each reached through its port in %v, all deleted at once in %v",
		n, prep.Round(time.Millisecond), created.Round(time.Millisecond), reached.Round(time.Millisecond), deleted.Round(time.Millisecond))
}

// TestLoadChurn creates and deletes 20 containers 20 times each, all at
// once, every one with the same id and published port each time: each
// incarnation answers through the port, and the end leaves nothing.
func TestLoadChurn(t *testing.T) {
	t.Parallel()
	const workers, rounds = 20, 20
	h := newNetHost(t)
	netName := "ch" + h.sfx[:4]
	h.createNetwork(netName)
	f := h.bundleFactory(netName, loadServer)

	ids, bundles := make([]string, workers), make([]string, workers)
	for i := range ids {
		ids[i] = h.newID()
		var err error
		if bundles[i], err = f.make(31000+i, token()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var cycles []time.Duration
	addrs := map[string]bool{}
	t0 := time.Now()
	parallel(workers, workers, func(w int) {
		for round := 0; round < rounds; round++ {
			what := fmt.Sprintf("container %s, round %d of %d", ids[w], round+1, rounds)
			// A new token each round: an answer through the port proves it
			// leads to this incarnation, not to a stale address.
			tok := token()
			if err := os.WriteFile(filepath.Join(bundles[w], "rootfs", "www", "index.html"), []byte(tok+"\n"), 0o644); err != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			start := time.Now()
			if r := h.berthLong("run", "-d", "-b", bundles[w], ids[w]); r.code != 0 {
				t.Errorf("%s: run -d: %s", what, r)
				return
			}
			// The port must lead to this incarnation at once; one TCP
			// exchange per round, and the address it got.
			wantTCP(t, h.otherSide(), hostAddr, 31000+w, tok, what)
			addr := h.recordAddr(ids[w])
			if r := h.berthLong("delete", "-f", ids[w]); r.code != 0 {
				t.Errorf("%s: delete -f: %s", what, r)
				return
			}
			mu.Lock()
			cycles = append(cycles, time.Since(start))
			addrs[addr] = true
			mu.Unlock()
		}
	})
	total := time.Since(t0)
	h.assertNothingOnNetwork(fmt.Sprintf("after %d containers churned %d times", workers, rounds), netName, ids)
	if len(cycles) != workers*rounds {
		t.Errorf("expected %d create/reach/delete cycles, %d completed", workers*rounds, len(cycles))
	}
	if len(cycles) > 0 {
		sort.Slice(cycles, func(i, j int) bool { return cycles[i] < cycles[j] })
		t.Logf("%d containers x %d rounds (run -d, TCP through the port, delete -f) in %v: cycle min %v, median %v, max %v; %d distinct addresses used",
			workers, rounds, total.Round(time.Millisecond), cycles[0].Round(time.Millisecond),
			cycles[len(cycles)/2].Round(time.Millisecond), cycles[len(cycles)-1].Round(time.Millisecond), len(addrs))
	}
}

// TestLoadEndings checks containers that end otherwise than by delete -f:
// their process exits on its own, the OOM killer kills it under a memory
// limit, or a createRuntime hook times out. `delete` and `gc` clean each up,
// and its id and port work again afterwards.
func TestLoadEndings(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	netName := "en" + h.sfx[:4]
	h.createNetwork(netName)
	h.helper()

	t.Run("process exits", func(t *testing.T) {
		h := h.withT(t)
		port := 32001
		id := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"},
			args: []string{"sh", "-c", "sleep 0.3; exit 3"}})
		addr := h.addrOf(netName, id)
		h.waitStatus(id, "stopped")
		// Stopped, not deleted: gc sees the init is gone and releases the
		// network at once; delete then finds nothing left to undo there.
		if rep := h.gc(); !slices.Contains(rep.Containers, id) {
			t.Errorf("gc after the process exited: expected %s among the containers released, got %+v", id, rep)
		}
		h.mustBerth("delete", id)
		h.endingsClean(t, netName, id, addr, port)
	})

	t.Run("oom killed", func(t *testing.T) {
		h := h.withT(t)
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control"); err != nil {
			t.Skipf("no cgroup v1 memory controller with memory.oom_control on this host: the test reads its oom_kill count: %v", err)
		}
		port := 32002
		limit := int64(32 << 20)
		id := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"},
			// dd fills a 128 MiB buffer: four times the limit, and no swap.
			args: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"},
			mods: []func(*specs.Spec){func(s *specs.Spec) {
				if s.Linux.Resources == nil {
					s.Linux.Resources = &specs.LinuxResources{}
				}
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
				if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
					s.Linux.Resources.Memory.Swap = &limit // no swap either
				}
			}}})
		addr := h.addrOf(netName, id)
		h.waitStatus(id, "stopped")
		kills := -1
		for _, d := range cgroupDirsNamed(id) {
			if strings.Contains(d, "/memory/") {
				data, _ := os.ReadFile(filepath.Join(d, "memory.oom_control"))
				for _, l := range strings.Split(string(data), "\n") {
					if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
						kills, _ = strconv.Atoi(v)
					}
				}
			}
		}
		if kills < 1 {
			t.Errorf("expected the container's memory cgroup to count an OOM kill, oom_kill = %d", kills)
		}
		h.mustBerth("delete", id)
		if rep := h.gc(); len(rep.Containers)+len(rep.Leases)+len(rep.Ports)+len(rep.Links) != 0 {
			t.Errorf("gc after delete of the OOM-killed container: expected nothing left to release, got %+v", rep)
		}
		h.endingsClean(t, netName, id, addr, port)
	})

	t.Run("hook times out", func(t *testing.T) {
		h := h.withT(t)
		port := 32003
		timeout := 2
		marker := filepath.Join(h.mkdir("hook"), "pid")
		bundle := h.bundle(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"},
			// berth-net sets the network up; a second createRuntime hook
			// then hangs past its timeout, so libcontainer kills it and
			// create fails with the network already made.
			mods: []func(*specs.Spec){func(s *specs.Spec) {
				s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, specs.Hook{
					Path: "/bin/sh", Args: []string{"sh", "-c", "echo $$ > " + marker + "; exec sleep 600"}, Timeout: &timeout})
			}}})
		id := h.newID()
		t0 := time.Now()
		// The hook would sleep 10 minutes; the bound below is far above
		// what the run takes alone (~2.5 s), because this test shares two
		// cores with the load tests, and far below the hook's sleep.
		r := h.berthLong("run", "-d", "-b", bundle, id)
		took := time.Since(t0)
		if r.code == 0 {
			t.Fatalf("run -d with a createRuntime hook that outlives its %ds timeout: expected a failure, got %s", timeout, r)
		}
		wantContains(t, r.stderr, "timeout", "run -d with a hook past its timeout")
		if took > loadCmdTimeout-30*time.Second {
			t.Errorf("run -d with a hook past its %ds timeout took %v: the timeout was not enforced", timeout, took)
		}
		if data, err := os.ReadFile(marker); err != nil {
			t.Errorf("the hanging hook never ran: %v", err)
		} else if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 && procState(pid) != "" && procState(pid) != "Z" {
			t.Errorf("the timed-out hook (pid %d) still runs", pid)
		}
		h.mustBerth("delete", "-f", id)
		h.mustBerth("gc")
		h.endingsClean(t, netName, id, "", port)
	})
}

// endingsClean checks that nothing of container id is left and that its
// port works for a new container at once.
func (h *netHost) endingsClean(t *testing.T, netName, id, addr string, port int) {
	t.Helper()
	for _, l := range h.crashLeftovers(id, addr, port) {
		t.Errorf("leftover of %s after delete and gc: %s", id, l)
	}
	tok := token()
	again := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"}, args: webServer, files: webFiles(tok)})
	wantTCP(t, h.otherSide(), hostAddr, port, tok, "a new container on the same port")
	h.mustBerth("delete", "-f", again)
}
