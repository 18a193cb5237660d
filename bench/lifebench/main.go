// Command lifebench times container lifecycles side by side: berth, runc
// and crun on the same bundle, taken alternately (A B C A B C ...) so that
// the machine's drift hits every runtime alike, after a warm-up, and
// reported as medians with their ratio to runc.
//
// crun 1.8 refuses cgroup v1 hosts that also mount the v2 hierarchy
// ("hybrid", as this project's CI machines are). lifebench therefore runs
// every runtime in one private mount namespace in which
// /sys/fs/cgroup/unified is unmounted, so all three see the same pure v1
// layout: it re-executes itself under unshare(1) to get there.
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

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/bench/internal/peakrss"
)

// A runtime is a runc-compatible binary and the state root it uses here.
type runtime struct {
	Name, Path, Root string
}

// A measure is one row of the table: each runtime's samples of it.
type measure struct {
	Name    string               `json:"name"`
	Unit    string               `json:"unit"`
	Samples map[string][]float64 `json:"-"`
	Median  map[string]float64   `json:"median"`
	Ratio   map[string]float64   `json:"ratio_to_runc,omitempty"`
}

func main() {
	berth := flag.String("berth", "bin/berth", "path of berth")
	bundle := flag.String("bundle", "bundles/out/busybox", "busybox bundle whose rootfs the benchmark uses")
	runs := flag.Int("runs", 30, "measured rounds (after the warm-up)")
	warm := flag.Int("warmup", 3, "rounds run and thrown away first")
	jsonOut := flag.String("json", "", "also write the results as JSON here")
	inner := flag.Bool("in-private-mount-ns", false, "(internal) already re-executed under unshare")
	flag.Parse()

	if !*inner {
		reexecPrivate()
		return
	}
	// Inside the private mount namespace: hide the v2 hierarchy from all.
	if err := unix.Unmount("/sys/fs/cgroup/unified", 0); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		fatalf("unmount /sys/fs/cgroup/unified in the private mount namespace: %v", err)
	}

	work, err := os.MkdirTemp("", "berth-lifebench-")
	if err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(work) })
	defer runAtExit()
	trueBundle, sleepBundle := makeBundles(work, *bundle)
	// Container ids name cgroups too, which every runtime shares: make them
	// this run's own.
	prefix := "lb" + strconv.Itoa(os.Getpid()) + "-"
	target := prefix + "exec-target"

	var rts []runtime
	for _, c := range []struct{ name, path string }{{"berth", *berth}, {"runc", "runc"}, {"crun", "crun"}} {
		p, err := exec.LookPath(c.path)
		if err != nil {
			log.Printf("%s not found (%v): left out", c.name, err)
			continue
		}
		root := filepath.Join(work, "root-"+c.name)
		os.MkdirAll(root, 0o700)
		rts = append(rts, runtime{c.name, p, root})
	}

	ms := []*measure{
		{Name: "run /bin/true", Unit: "ms"},
		{Name: "create+start+wait+delete -f", Unit: "ms"},
		{Name: "  create", Unit: "ms"},
		{Name: "  start", Unit: "ms"},
		{Name: "  wait (process exits)", Unit: "ms"},
		{Name: "  delete -f", Unit: "ms"},
		{Name: "exec /bin/true", Unit: "ms"},
		{Name: "peak RSS of create", Unit: "MiB"},
	}
	for _, m := range ms {
		m.Samples = map[string][]float64{}
	}
	floor := &measure{Name: "floor: unshare -fpmnuiC true", Unit: "ms", Samples: map[string][]float64{}}

	// A running container per runtime for exec.
	for _, rt := range rts {
		if _, _, err := rt.cmd("run", "-d", "-b", sleepBundle, target); err != nil {
			fatalf("%s: start exec target: %v", rt.Name, err)
		}
	}
	atExit(func() {
		for _, rt := range rts {
			rt.cmd("delete", "-f", target)
		}
	})

	for round := -*warm; round < *runs; round++ {
		keep := round >= 0
		for _, rt := range rts {
			id := fmt.Sprintf("%s%d", prefix, round+*warm)
			d, _, err := rt.cmd("run", "-b", trueBundle, id+"r")
			must(rt, "run", err)
			add(keep, ms[0], rt.Name, ms1(d))

			d1, _, err := rt.cmd("create", "-b", trueBundle, id+"c")
			must(rt, "create", err)
			pid := rt.initPid(id + "c")
			pfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				fatalf("%s: pidfd of init %d: %v", rt.Name, pid, err)
			}
			d2, _, err := rt.cmd("start", id+"c")
			must(rt, "start", err)
			t := time.Now()
			waitPidfd(pfd)
			d3 := time.Since(t)
			unix.Close(pfd)
			d4, _, err := rt.cmd("delete", "-f", id+"c")
			must(rt, "delete -f", err)
			add(keep, ms[1], rt.Name, ms1(d1+d2+d3+d4))
			add(keep, ms[2], rt.Name, ms1(d1))
			add(keep, ms[3], rt.Name, ms1(d2))
			add(keep, ms[4], rt.Name, ms1(d3))
			add(keep, ms[5], rt.Name, ms1(d4))

			d, _, err = rt.cmd("exec", target, "true")
			must(rt, "exec", err)
			add(keep, ms[6], rt.Name, ms1(d))
		}
		t := time.Now()
		if err := exec.Command("unshare", "-fpmnuiC", "true").Run(); err != nil {
			fatalf("unshare: %v", err)
		}
		add(keep, floor, "floor", ms1(time.Since(t)))
	}

	// Peak RSS of create, each runtime's own (package peakrss: the Maxrss
	// of a child of this Go program would count this program's memory).
	// Separate rounds: running under GNU time adds a fork and an exec.
	for round := range rssRounds {
		for _, rt := range rts {
			id := fmt.Sprintf("%srss%d", prefix, round)
			rss, err := rt.createRSS(trueBundle, id)
			must(rt, "create (peak RSS)", err)
			_, _, err = rt.cmd("delete", "-f", id)
			must(rt, "delete -f", err)
			add(true, ms[7], rt.Name, float64(rss)/1024)
		}
	}

	names := []string{}
	for _, rt := range rts {
		names = append(names, rt.Name)
	}
	fmt.Printf("lifecycle, median of %d rounds after %d warm-up, runtimes taken alternately; all in a private mount namespace\n", *runs, *warm)
	fmt.Printf("without /sys/fs/cgroup/unified (crun 1.8 refuses hybrid cgroups), so every runtime sees pure cgroup v1\n\n")
	fmt.Printf("%-30s", "")
	for _, n := range names {
		fmt.Printf(" %10s", n)
	}
	for _, n := range names {
		if n != "runc" {
			fmt.Printf(" %12s", n+"/runc")
		}
	}
	if slices.Contains(names, "crun") {
		fmt.Printf(" %12s", "berth/crun")
	}
	fmt.Println()
	for _, m := range ms {
		m.finish()
		fmt.Printf("%-30s", m.Name+" ("+m.Unit+")")
		for _, n := range names {
			fmt.Printf(" %10.2f", m.Median[n])
		}
		for _, n := range names {
			if n != "runc" {
				fmt.Printf(" %11.2fx", m.Ratio[n])
			}
		}
		if slices.Contains(names, "crun") {
			fmt.Printf(" %11.2fx", m.Median["berth"]/m.Median["crun"])
		}
		fmt.Println()
	}
	floor.finish()
	fmt.Printf("%-30s %10.2f\n", floor.Name+" (ms)", floor.Median["floor"])

	if *jsonOut != "" {
		data, _ := json.MarshalIndent(append(ms, floor), "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

// reexecPrivate runs lifebench again in a private mount namespace.
func reexecPrivate() {
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	args := append([]string{"-m", "--propagation", "private", self, "-in-private-mount-ns"}, os.Args[1:]...)
	c := exec.Command("unshare", args...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fatalf("%v", err)
	}
}

// makeBundles writes two bundles sharing the busybox rootfs: one whose
// process is /bin/true, one that sleeps (for exec).
func makeBundles(work, busybox string) (trueBundle, sleepBundle string) {
	data, err := os.ReadFile(filepath.Join(busybox, "config.json"))
	if err != nil {
		fatalf("%v", err)
	}
	rootfs, err := filepath.Abs(filepath.Join(busybox, "rootfs"))
	if err != nil {
		fatalf("%v", err)
	}
	for _, b := range []struct {
		dir  *string
		args []string
	}{{&trueBundle, []string{"/bin/true"}}, {&sleepBundle, []string{"sleep", "100000"}}} {
		var spec map[string]any
		if err := json.Unmarshal(data, &spec); err != nil {
			fatalf("%v", err)
		}
		p := spec["process"].(map[string]any)
		p["args"], p["terminal"] = b.args, false
		spec["ociVersion"] = "1.0.2" // crun 1.8 knows no later version
		spec["root"] = map[string]any{"path": rootfs, "readonly": true}
		*b.dir = filepath.Join(work, "bundle-"+b.args[0][strings.LastIndex(b.args[0], "/")+1:])
		os.MkdirAll(*b.dir, 0o755)
		out, _ := json.Marshal(spec)
		if err := os.WriteFile(filepath.Join(*b.dir, "config.json"), out, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	return trueBundle, sleepBundle
}

// rssRounds is how many creates per runtime measure its peak RSS.
const rssRounds = 10

// createRSS creates container id under GNU time and returns the runtime's
// own peak RSS (KiB).
func (rt runtime) createRSS(bundle, id string) (int64, error) {
	c := exec.Command(rt.Path, "--root", rt.Root, "create", "-b", bundle, id)
	read, err := peakrss.Wrap(c)
	if err != nil {
		return 0, err
	}
	// A file, not a pipe: the container's init inherits it (see cmd).
	errFile, err := os.CreateTemp(rt.Root, "stderr-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	c.Stdout, c.Stderr = errFile, errFile
	err = c.Run()
	rss, rerr := read()
	if err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		return 0, fmt.Errorf("%s create %s: %v: %s", rt.Name, id, err, msg)
	}
	return rss, rerr
}

// cmd runs the runtime once and returns its wall time and the Maxrss wait4
// reported (which includes this program's own memory: see createRSS).
// Its stderr goes to a file, not a pipe: a detached container inherits the
// runtime's stdio and would hold a pipe open for as long as it runs.
func (rt runtime) cmd(args ...string) (time.Duration, int64, error) {
	c := exec.Command(rt.Path, append([]string{"--root", rt.Root}, args...)...)
	errFile, err := os.CreateTemp(rt.Root, "stderr-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	c.Stderr = errFile
	t := time.Now()
	err = c.Run()
	d := time.Since(t)
	if err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		return d, 0, fmt.Errorf("%s %s: %v: %s", rt.Name, strings.Join(args, " "), err, msg)
	}
	return d, c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

func (rt runtime) initPid(id string) int {
	out, err := exec.Command(rt.Path, "--root", rt.Root, "state", id).Output()
	if err != nil {
		fatalf("%s state %s: %v", rt.Name, id, err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		fatalf("%s state %s: no pid in %s", rt.Name, id, out)
	}
	return st.Pid
}

func waitPidfd(fd int) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, 10_000); err != unix.EINTR {
			return
		}
	}
}

func must(rt runtime, what string, err error) {
	if err != nil {
		fatalf("%s %s: %v", rt.Name, what, err)
	}
}

func add(keep bool, m *measure, name string, v float64) {
	if keep {
		m.Samples[name] = append(m.Samples[name], v)
	}
}

func ms1(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (m *measure) finish() {
	m.Median, m.Ratio = map[string]float64{}, map[string]float64{}
	for n, s := range m.Samples {
		slices.Sort(s)
		m.Median[n] = s[len(s)/2]
	}
	if r := m.Median["runc"]; r > 0 {
		for n, v := range m.Median {
			if n != "runc" {
				m.Ratio[n] = v / r
			}
		}
	}
}

// Cleanups run, last first, on the way out, also after a fatal error, so
// that no container or cgroup of the benchmark is left behind.
var cleanups []func()

func atExit(f func()) { cleanups = append(cleanups, f) }

func runAtExit() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatalf(format string, args ...any) {
	log.Printf(format, args...)
	runAtExit()
	os.Exit(1)
}
