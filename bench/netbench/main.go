// Command netbench times berth-net's setup and teardown hooks for a bridge
// container with two published ports, with K containers already attached,
// for each K asked for: the figure that tells whether per-container
// firewall work grows with the number of containers.
//
// It must run as root inside a network namespace made for it (bench/net.sh
// makes one): it creates a network, bridges, veths and firewall rules there.
// Containers are stand-ins: a sleep(1) in a network namespace of its own,
// with a bundle holding just what the hook reads (config.json and
// rootfs/etc), and the hook is exec'd with the OCI state on stdin exactly as
// a runtime would.
package main

import (
	"bytes"
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
)

type result struct {
	Tool       string  `json:"tool"`
	Firewall   string  `json:"firewall,omitempty"`
	Attached   int     `json:"attached"` // containers already attached when the probe set up
	Runs       int     `json:"runs"`
	SetupMs    float64 `json:"setup_ms"`    // median
	TeardownMs float64 `json:"teardown_ms"` // median
	PeakRSSKiB int64   `json:"peak_rss_kib"`
}

func main() {
	berthNet := flag.String("berth-net", "bin/berth-net", "path of berth-net")
	fw := flag.String("firewall", "nftables", "firewall backend of the network")
	levels := flag.String("at", "1,100,500", "comma-separated container counts at which to measure (the probe is container #N)")
	runs := flag.Int("runs", 30, "setup+teardown cycles of the probe at each level")
	jsonOut := flag.String("json", "", "also write the results as JSON here")
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

	b, err := newBench(*berthNet, *fw)
	if err != nil {
		log.Fatal(err)
	}
	defer b.close()
	var results []result
	for _, n := range at {
		if err := b.fillTo(n - 1); err != nil {
			log.Fatal(err)
		}
		r, err := b.probe(*runs)
		if err != nil {
			log.Fatal(err)
		}
		r.Attached = n - 1
		results = append(results, r)
		fmt.Printf("%-9s %-9s container #%-4d setup %7.2f ms  teardown %7.2f ms  (median of %d)  peak RSS %d KiB\n",
			r.Tool, r.Firewall, n, r.SetupMs, r.TeardownMs, r.Runs, r.PeakRSSKiB)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// bench holds the stand-in containers kept attached between levels.
type bench struct {
	berthNet, firewall, network, dir string
	env                              []string
	resident                         []*standIn
}

// standIn is a container as the hook sees it: a process in its own network
// namespace and a bundle.
type standIn struct {
	id, bundle string
	cmd        *exec.Cmd
}

func newBench(berthNet, fw string) (*bench, error) {
	abs, err := filepath.Abs(berthNet)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "berth-netbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{berthNet: abs, firewall: fw, network: "nb" + strconv.Itoa(os.Getpid()%100000), dir: dir}
	b.env = append(os.Environ(), "BERTH_NET_ROOT="+filepath.Join(dir, "net"))
	// A /16 leaves room for 500 containers and is private to this namespace.
	out, err := b.berthNetCmd(nil, "network", "create", "--subnet", "10.250.0.0/16", "--firewall", fw, b.network).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("network create: %v: %s", err, out)
	}
	return b, nil
}

func (b *bench) berthNetCmd(stdin []byte, args ...string) *exec.Cmd {
	c := exec.Command(b.berthNet, args...)
	c.Env = b.env
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	return c
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

func (s *standIn) state() []byte {
	data, _ := json.Marshal(specs.State{Version: specs.Version, ID: s.id, Status: specs.StateCreating, Pid: s.cmd.Process.Pid, Bundle: s.bundle})
	return data
}

// ports gives container #i two host ports of its own: tcp and udp.
func ports(i int) []string {
	return []string{"--publish", fmt.Sprintf("%d:80", 20000+i), "--publish", fmt.Sprintf("%d:53/udp", 20000+i)}
}

func (b *bench) setup(s *standIn, i int) (time.Duration, int64, error) {
	args := append([]string{"setup", "--network", "bridge:" + b.network}, ports(i)...)
	c := b.berthNetCmd(s.state(), args...)
	start := time.Now()
	out, err := c.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("setup %s: %v: %s", s.id, err, out)
	}
	return d, c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

func (b *bench) teardown(s *standIn) (time.Duration, error) {
	c := b.berthNetCmd(s.state(), "teardown")
	start := time.Now()
	out, err := c.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("teardown %s: %v: %s", s.id, err, out)
	}
	return d, nil
}

// fillTo attaches resident containers until n are attached.
func (b *bench) fillTo(n int) error {
	for len(b.resident) < n {
		i := len(b.resident) + 1
		s, err := b.newStandIn("c" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		b.resident = append(b.resident, s)
		if _, _, err := b.setup(s, i); err != nil {
			return err
		}
	}
	return nil
}

// probe sets up and tears down one more container runs times.
func (b *bench) probe(runs int) (result, error) {
	r := result{Tool: "berth-net", Firewall: b.firewall, Runs: runs}
	s, err := b.newStandIn("probe")
	if err != nil {
		return r, err
	}
	defer func() { s.cmd.Process.Kill(); s.cmd.Wait() }()
	var setups, teardowns []time.Duration
	for range runs {
		d, rss, err := b.setup(s, 9999)
		if err != nil {
			return r, err
		}
		r.PeakRSSKiB = max(r.PeakRSSKiB, rss)
		t, err := b.teardown(s)
		if err != nil {
			return r, err
		}
		setups, teardowns = append(setups, d), append(teardowns, t)
	}
	r.SetupMs, r.TeardownMs = medianMs(setups), medianMs(teardowns)
	return r, nil
}

func medianMs(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// close tears down every resident, then the network, then the files.
func (b *bench) close() {
	for _, s := range b.resident {
		if _, err := b.teardown(s); err != nil {
			log.Print(err)
		}
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	if out, err := b.berthNetCmd(nil, "network", "rm", b.network).CombinedOutput(); err != nil {
		log.Printf("network rm: %v: %s", err, out)
	}
	os.RemoveAll(b.dir)
}
