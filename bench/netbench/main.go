// Command netbench times a network hook's setup and teardown for a bridge
// container with two published ports (tcp and udp), with K containers
// already attached, for each K asked for: the figure that tells whether
// per-container work grows with the number of containers. The hook is
// berth-net (either firewall backend) or, for comparison, Debian's CNI
// plugins (bridge + host-local + portmap) called directly as a CNI runtime
// would.
//
// It must run as root inside a network namespace made for it (bench/net.sh
// makes one): it creates bridges, veths and firewall rules there.
// Containers are stand-ins: a sleep(1) in a network namespace of its own,
// with a bundle holding just what berth-net reads (config.json and
// rootfs/etc).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/bench/internal/peakrss"
)

// A hook connects stand-in containers and disconnects them again; each
// call reports its wall time and the peak RSS of what it ran.
type hook interface {
	name() string
	setup(s *standIn, hostPort int) (time.Duration, int64, error)
	teardown(s *standIn) (time.Duration, error)
	close()
}

type result struct {
	Tool       string  `json:"tool"`
	Attached   int     `json:"attached"` // containers already attached when the probe set up
	Runs       int     `json:"runs"`
	SetupMs    float64 `json:"setup_ms"`     // median
	TeardownMs float64 `json:"teardown_ms"`  // median
	PeakRSSKiB int64   `json:"peak_rss_kib"` // the hook's own, the highest of rssRuns extra setups
}

func main() {
	berthNetPath := flag.String("berth-net", "bin/berth-net", "path of berth-net")
	fw := flag.String("firewall", "nftables", "firewall backend of the network (berth-net)")
	tool := flag.String("tool", "berth-net", "berth-net; cni: Debian's CNI plugins bridge + host-local + portmap; floor: bare netlink veth + bridge in-process")
	cniPath := flag.String("cni-path", "/usr/lib/cni", "where the CNI plugins are")
	levels := flag.String("at", "1,100,500", "comma-separated container counts at which to measure (the probe is container #N)")
	runs := flag.Int("runs", 30, "setup+teardown cycles of the probe at each level")
	jsonOut := flag.String("json", "", "also write the results as JSON here")
	settle := flag.Duration("settle", 10*time.Second, "wait this long after attaching containers before the probe runs (see settleNote)")
	iperf := flag.Int("throughput", 0, "berth-net only: also measure iperf3 throughput for this many seconds per path")
	flag.Parse()

	var at []int
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-at %q: want positive counts", *levels)
		}
		at = append(at, n)
	}
	slices.Sort(at)

	dir, err := os.MkdirTemp("", "berth-netbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var h hook
	switch *tool {
	case "berth-net":
		h, err = newBerthNet(*berthNetPath, *fw, dir)
	case "cni":
		h, err = newCNI(*cniPath, dir)
	case "floor":
		h, err = newFloor()
	default:
		err = fmt.Errorf("-tool %q: want berth-net, cni or floor", *tool)
	}
	if err != nil {
		log.Fatal(err)
	}
	b := &bench{hook: h, dir: dir}
	var results []result
	for _, n := range at {
		if err = b.fillTo(n - 1); err != nil {
			break
		}
		time.Sleep(*settle)
		var r result
		if r, err = b.probe(*runs); err != nil {
			break
		}
		r.Attached = n - 1
		results = append(results, r)
		fmt.Printf("%-20s container #%-4d setup %7.2f ms  teardown %7.2f ms  (median of %d)  peak RSS %d KiB\n",
			r.Tool, n, r.SetupMs, r.TeardownMs, r.Runs, r.PeakRSSKiB)
	}
	var tput []throughputResult
	if bn, ok := h.(*berthNet); ok && *iperf > 0 && err == nil {
		tput, err = b.throughput(bn, *iperf)
		for _, t := range tput {
			fmt.Printf("%-48s %6.2f Gbit/s  (%.0f%% of the direct path)\n", t.Path, t.Gbps, 100*t.Gbps/tput[0].Gbps)
		}
	}
	b.close()
	if err != nil {
		log.Fatal(err)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(map[string]any{"setup": results, "throughput": tput}, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// settleNote: right after links are made, the kernel is still busy with
// them for several seconds: each new interface runs IPv6 autoconfiguration
// (duplicate address detection, 3 router solicitations 4 s apart, MLD
// reports), and the bridge floods that multicast to every port. Probed at
// once, container #500 measured the tail of the 499 others' start (the
// bare netlink floor: 6.5 ms at #500 in the first 30 runs, 3.4 ms over 400
// runs, 2.0 ms at #1). Containers that run side by side are past it, so
// the probe waits -settle first. At #1 the wait lets the namespaces of a
// previous run's containers finish going away: the kernel destroys them
// in the background, and a probe at once measured that (#1 of the
// nftables run after the floor's: 14.5 ms, against 9.2 ms on a quiet
// host).

// bench holds the stand-in containers kept attached between levels.
type bench struct {
	hook     hook
	dir      string
	resident []*standIn
}

// standIn is a container as a network hook sees it: a process in its own
// network namespace and a bundle.
type standIn struct {
	id, bundle string
	cmd        *exec.Cmd
}

func (b *bench) newStandIn(name string) (*standIn, error) {
	s := &standIn{id: name, bundle: filepath.Join(b.dir, "bundles", name)}
	if err := os.MkdirAll(filepath.Join(s.bundle, "rootfs", "etc"), 0o755); err != nil {
		return nil, err
	}
	spec := specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "rootfs"}, Hostname: name,
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}}}
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(s.bundle, "config.json"), data, 0o644); err != nil {
		return nil, err
	}
	s.cmd = exec.Command("sleep", "infinity")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("stand-in %s: %w", name, err)
	}
	return s, nil
}

func (s *standIn) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *standIn) netnsPath() string { return "/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/ns/net" }

// fillTo attaches resident containers until n are attached. Container #i
// publishes host port 20000+i (tcp and udp).
func (b *bench) fillTo(n int) error {
	for len(b.resident) < n {
		i := len(b.resident) + 1
		s, err := b.newStandIn("c" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		b.resident = append(b.resident, s)
		if _, _, err := b.hook.setup(s, 20000+i); err != nil {
			return err
		}
	}
	return nil
}

// probe sets up and tears down one more container, runs times.
func (b *bench) probe(runs int) (result, error) {
	r := result{Tool: b.hook.name(), Runs: runs}
	s, err := b.newStandIn("probe")
	if err != nil {
		return r, err
	}
	defer s.stop()
	var setups, teardowns []time.Duration
	for range runs {
		d, _, err := b.hook.setup(s, 19999)
		if err != nil {
			return r, err
		}
		t, err := b.hook.teardown(s)
		if err != nil {
			return r, err
		}
		setups, teardowns = append(setups, d), append(teardowns, t)
	}
	r.SetupMs, r.TeardownMs = medianMs(setups), medianMs(teardowns)
	measureRSS = true
	defer func() { measureRSS = false }()
	for range rssRuns {
		_, rss, err := b.hook.setup(s, 19999)
		if err != nil {
			return r, err
		}
		r.PeakRSSKiB = max(r.PeakRSSKiB, rss)
		if _, err := b.hook.teardown(s); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (b *bench) close() {
	// The CNI plugins' links and rules are all in the test namespace and
	// their IPAM state in this run's directory, which net.sh and main
	// remove; a DEL per container would add minutes (0.3 s each at #500)
	// to a run that must fit in 15. berth-net's teardown is quick, and
	// running it for every container checks that it leaves nothing.
	_, skipTeardown := b.hook.(*cni)
	for _, s := range b.resident {
		if !skipTeardown {
			if _, err := b.hook.teardown(s); err != nil {
				log.Print(err)
			}
		}
		s.stop()
	}
	b.hook.close()
}

func medianMs(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// measureRSS makes timed run commands under GNU time for their own peak
// RSS (package peakrss). It is set only for extra runs whose times are not
// kept: the wrapper's fork and exec would be counted in them.
var measureRSS bool

// rssRuns is how many extra setups of the probe measure its peak RSS.
const rssRuns = 5

// timed runs c and returns its wall time and, when measureRSS is set, its
// own peak RSS (KiB; 0 otherwise).
func timed(c *exec.Cmd) (time.Duration, int64, []byte, error) {
	var readRSS func() (int64, error)
	if measureRSS {
		var err error
		if readRSS, err = peakrss.Wrap(c); err != nil {
			return 0, 0, nil, err
		}
	}
	start := time.Now()
	out, err := c.Output()
	d := time.Since(start)
	var rss int64
	if readRSS != nil {
		var rerr error
		if rss, rerr = readRSS(); err == nil && rerr != nil {
			err = fmt.Errorf("peak RSS: %w", rerr)
		}
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return d, 0, out, fmt.Errorf("%s: %v: %s%s", filepath.Base(c.Path), err, out, ee.Stderr)
		}
		return d, 0, out, err
	}
	return d, rss, out, nil
}
