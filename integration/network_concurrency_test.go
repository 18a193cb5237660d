package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// concurrentContainers is how many containers TestNetConcurrent sets up at
// once on one network.
const concurrentContainers = 50

// timedSetup wraps the berth-net setup hook in a shell that writes how
// long it took, in microseconds, to file.
func timedSetup(file string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		for i, hk := range s.Hooks.CreateRuntime {
			if filepath.Base(hk.Path) != "berth-net" {
				continue
			}
			script := `s=$(date +%s%N); "$0" "$@"; rc=$?; e=$(date +%s%N); echo $(( (e - s) / 1000 )) > ` + file + `; exit $rc`
			s.Hooks.CreateRuntime[i] = specs.Hook{Path: "/bin/sh", Args: append([]string{"sh", "-c", script, hk.Path}, hk.Args[1:]...), Env: hk.Env}
		}
	}
}

func readMicros(t *testing.T, file string) time.Duration {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("reading the hook's timing: %v", err)
		return 0
	}
	us, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Errorf("the hook's timing %q: %v", data, err)
	}
	return time.Duration(us) * time.Microsecond
}

// TestNetConcurrent sets up 50 containers at once on one network, each
// publishing a TCP and a UDP port, for each firewall backend: they get 50
// distinct addresses, and deleting them all at once leaves nothing. It
// logs how long berth-net setup takes (no assertion on it) for the first
// container of the network, which also makes the bridge and its rules,
// and for one with 50 already attached.
func TestNetConcurrent(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			testConcurrent(t, fw)
		})
	}
}

func testConcurrent(t *testing.T, fw string) {
	h := newNetHost(t)
	netName := "cc" + h.sfx[:4]
	n := h.createNetwork(netName, "--firewall", fw)
	timings := h.mkdir("timings")
	spec := func(i int) []string {
		return []string{"--network", "bridge:" + netName,
			"--publish", strconv.Itoa(20000+i) + ":80", "--publish", strconv.Itoa(21000+i) + ":53/udp"}
	}

	h.helper() // built before anything is timed
	// Baseline: the same container without network hooks.
	t0 := time.Now()
	h.start(netCtr{})
	baseline := time.Since(t0)

	// The network's first container: setup also makes the bridge and rules.
	firstFile := filepath.Join(timings, "first")
	t0 = time.Now()
	first := h.start(netCtr{spec: spec(0), mods: []func(*specs.Spec){timedSetup(firstFile)}})
	firstRun := time.Since(t0)

	// Fifty at once.
	type job struct {
		id, bundle, timing string
		res                result
		took               time.Duration
	}
	jobs := make([]*job, concurrentContainers)
	for i := range jobs {
		f := filepath.Join(timings, strconv.Itoa(i+1))
		jobs[i] = &job{id: h.newID(), timing: f, bundle: h.bundle(netCtr{spec: spec(i + 1), mods: []func(*specs.Spec){timedSetup(f)}})}
	}
	var wg sync.WaitGroup
	t0 = time.Now()
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			j.res = h.berth("run", "-d", "-b", j.bundle, j.id)
			j.took = time.Since(start)
		}()
	}
	wg.Wait()
	batch := time.Since(t0)
	ok := true
	for _, j := range jobs {
		if j.res.code != 0 {
			ok = false
			t.Errorf("%d containers at once: run -d %s: %s", concurrentContainers, j.id, j.res)
		}
	}
	if !ok {
		t.FailNow()
	}

	addrOf := h.assertDistinctAddresses(n, concurrentContainers+1)
	if v := h.vethsOnHost(); len(v) != concurrentContainers+1 {
		t.Errorf("expected %d container veths in the test host, got %d", concurrentContainers+1, len(v))
	}
	// Spot check that the last ones wired up have their address on eth0.
	for _, j := range jobs[len(jobs)-3:] {
		out := h.mustExec(j.id, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
		if addrOf[j.id] == "" || !strings.Contains(out, "inet "+addrOf[j.id]+"/") {
			t.Errorf("container %s: expected eth0 to have its address %q, got %q", j.id, addrOf[j.id], out)
		}
	}

	// One more, with 50 already attached.
	lastFile := filepath.Join(timings, "last")
	t0 = time.Now()
	last := h.start(netCtr{spec: spec(concurrentContainers + 1), mods: []func(*specs.Spec){timedSetup(lastFile)}})
	lastRun := time.Since(t0)

	var hooks []time.Duration
	for _, j := range jobs {
		hooks = append(hooks, readMicros(t, j.timing))
	}
	sort.Slice(hooks, func(i, j int) bool { return hooks[i] < hooks[j] })
	t.Logf("%s: berth-net setup (bridge + 2 ports): first container of the network %v (run -d %v); with %d attached %v (run -d %v); run -d without network %v",
		fw, readMicros(t, firstFile), firstRun, concurrentContainers+1, readMicros(t, lastFile), lastRun, baseline)
	t.Logf("%s: %d at once: all run in %v; their setup hooks took min %v, median %v, max %v (lock waits included)",
		fw, concurrentContainers, batch, hooks[0], hooks[len(hooks)/2], hooks[len(hooks)-1])

	// Delete them all at once.
	all := append([]string{first, last}, func() []string {
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.id)
		}
		return ids
	}()...)
	results := make([]result, len(all))
	t0 = time.Now()
	for i, id := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.berth("delete", "-f", id)
		}()
	}
	wg.Wait()
	t.Logf("%s: %d deleted at once in %v", fw, len(all), time.Since(t0))
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("delete -f %s at once with the others: %s", all[i], r)
		}
	}
	h.assertNothingOnNetwork("after deleting all at once", netName, all)
}
