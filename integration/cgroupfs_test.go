package integration

// Cgroup access for the resource tests that works on every layout a host can
// have: cgroup v1 only (legacy), v1 controllers with a v2 hierarchy beside
// them (hybrid) and v2 only (unified). The v1-only helpers of the harness
// (cgroupV1File, readCgroup) skip their tests on a unified host; these read
// the v2 file of the same setting there instead.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Filesystem magic numbers of statfs(2) (linux/magic.h).
const (
	cgroup2SuperMagic = 0x63677270
	cgroupSuperMagic  = 0x27e0eb
	tmpfsMagic        = 0x01021994
)

// cgroupLayout is how the host's cgroups are mounted.
type cgroupLayout int

const (
	cgroupLegacy  cgroupLayout = iota // v1 hierarchies only
	cgroupHybrid                      // v1 controllers, an empty v2 hierarchy at /sys/fs/cgroup/unified
	cgroupUnified                     // v2 only, at /sys/fs/cgroup
)

func (l cgroupLayout) String() string {
	switch l {
	case cgroupLegacy:
		return "v1 (legacy)"
	case cgroupHybrid:
		return "hybrid (v1 controllers)"
	case cgroupUnified:
		return "v2 (unified)"
	}
	return "layout(" + strconv.Itoa(int(l)) + ")"
}

func fsMagic(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// hostCgroupLayout tells the layout the way libcontainer does
// (cgroups.IsCgroup2UnifiedMode, IsCgroup2HybridMode): by the filesystem
// type of /sys/fs/cgroup and of /sys/fs/cgroup/unified.
var hostCgroupLayout = sync.OnceValues(func() (cgroupLayout, error) {
	m, err := fsMagic("/sys/fs/cgroup")
	if err != nil {
		return 0, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if m == cgroup2SuperMagic {
		return cgroupUnified, nil
	}
	if m2, err := fsMagic("/sys/fs/cgroup/unified"); err == nil && m2 == cgroup2SuperMagic {
		return cgroupHybrid, nil
	}
	return cgroupLegacy, nil
})

func layoutOf(t *testing.T) cgroupLayout {
	t.Helper()
	l, err := hostCgroupLayout()
	if err != nil {
		t.Fatalf("cannot tell the host's cgroup layout: %v", err)
	}
	return l
}

// cgroupMount is one cgroup (v1 or v2) mount of /proc/self/mountinfo.
type cgroupMount struct {
	v2          bool
	root        string // the cgroup path of the hierarchy that is mounted
	mountpoint  string
	controllers []string // v1: the controllers of the hierarchy
	options     []string // v1: every super option (controllers, name=systemd, rw...)
}

func cgroupMounts(t *testing.T) []cgroupMount {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("reading mountinfo: %v", err)
	}
	var ms []cgroupMount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			ms = append(ms, cgroupMount{v2: true, root: unescapeMountinfo(f[3]), mountpoint: unescapeMountinfo(f[4])})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.Contains(o, "=") || o == "noprefix" || o == "clone_children" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					ctrls = append(ctrls, o)
				}
			}
			ms = append(ms, cgroupMount{root: unescapeMountinfo(f[3]), mountpoint: unescapeMountinfo(f[4]), controllers: ctrls, options: strings.Split(g[2], ",")})
		}
	}
	return ms
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// underMount maps a cgroup path to a directory below the mount of m.
func underMount(m cgroupMount, cgPath string) string {
	rel := cgPath
	if m.root != "/" {
		rel = strings.TrimPrefix(cgPath, m.root)
	}
	return filepath.Join(m.mountpoint, rel)
}

// cgroupDir returns the directory of the cgroup of host process pid that
// holds controller's files: on a unified host the pid's v2 cgroup (the
// controller must be enabled there), otherwise the pid's cgroup in the v1
// hierarchy of controller. The test is skipped when the host lacks the
// controller.
func cgroupDir(t *testing.T, pid int, controller string) string {
	t.Helper()
	layout := layoutOf(t)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("reading the cgroup of pid %d: %v", pid, err)
	}
	mounts := cgroupMounts(t)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if layout == cgroupUnified {
			if parts[0] != "0" || parts[1] != "" {
				continue
			}
			for _, m := range mounts {
				if !m.v2 {
					continue
				}
				dir := underMount(m, parts[2])
				ctrls, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
				if err != nil {
					t.Fatalf("reading the cgroup.controllers of pid %d's cgroup: %v", pid, err)
				}
				for _, c := range strings.Fields(string(ctrls)) {
					if c == controller {
						return dir
					}
				}
				t.Skipf("cgroup v2: the %s controller is not enabled for %s (cgroup.controllers: %q)", controller, dir, strings.TrimSpace(string(ctrls)))
			}
			t.Fatalf("cgroup v2: pid %d is in %s but no cgroup2 mount was found in mountinfo", pid, parts[2])
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != controller {
				continue
			}
			for _, m := range mounts {
				if m.v2 {
					continue
				}
				for _, mc := range m.controllers {
					if mc == controller {
						return underMount(m, parts[2])
					}
				}
			}
			t.Fatalf("cgroup v1: pid %d has a %s cgroup (%s) but that hierarchy is not mounted", pid, controller, parts[2])
		}
	}
	t.Skipf("this host (%v) has no cgroup with the %s controller for pid %d: %q", layout, controller, pid, data)
	return ""
}

// readCgroupFileOf reads (trimmed) the v1 or the v2 file of controller in the
// cgroup of pid, whichever the host's layout uses.
func readCgroupFileOf(t *testing.T, pid int, controller, v1file, v2file string) string {
	t.Helper()
	file := v1file
	if layoutOf(t) == cgroupUnified {
		file = v2file
	}
	p := filepath.Join(cgroupDir(t, pid, controller), file)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	return strings.TrimSpace(string(data))
}

// v1Unlimited is where cgroup v1 counts "no limit" from: the kernel shows
// PAGE_COUNTER_MAX pages, rounded, 9223372036854771712 on 4k pages.
const v1Unlimited = uint64(1) << 62

// cgMemoryMax is the memory limit in bytes of pid's cgroup, "max" if none
// (v1 memory.limit_in_bytes, v2 memory.max).
func cgMemoryMax(t *testing.T, pid int) string {
	t.Helper()
	v := readCgroupFileOf(t, pid, "memory", "memory.limit_in_bytes", "memory.max")
	if n, err := strconv.ParseUint(v, 10, 64); err == nil && n >= v1Unlimited {
		return "max"
	}
	return v
}

// cgPidsMax is pids.max of pid's cgroup (the same file on v1 and v2).
func cgPidsMax(t *testing.T, pid int) string {
	t.Helper()
	return readCgroupFileOf(t, pid, "pids", "pids.max", "pids.max")
}

// cgPidsCurrent is pids.current of pid's cgroup.
func cgPidsCurrent(t *testing.T, pid int) int {
	t.Helper()
	return atoiOrFail(t, readCgroupFileOf(t, pid, "pids", "pids.current", "pids.current"), "pids.current")
}

// cgCPUMax is the CFS bandwidth of pid's cgroup in the v2 cpu.max form
// "QUOTA PERIOD" ("max PERIOD" without a quota); on v1 it is made from
// cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us.
func cgCPUMax(t *testing.T, pid int) string {
	t.Helper()
	if layoutOf(t) == cgroupUnified {
		return readCgroupFileOf(t, pid, "cpu", "", "cpu.max")
	}
	quota := readCgroupFileOf(t, pid, "cpu", "cpu.cfs_quota_us", "")
	period := readCgroupFileOf(t, pid, "cpu", "cpu.cfs_period_us", "")
	if quota == "-1" {
		quota = "max"
	}
	return quota + " " + period
}

// keyedValue returns the number after key in a flat keyed cgroup file
// ("key value" lines: memory.events, cpu.stat, pids.events, ...).
func keyedValue(t *testing.T, content, key, what string) int {
	t.Helper()
	for _, l := range strings.Split(content, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok && k == key {
			return atoiOrFail(t, strings.TrimSpace(v), what+" "+key)
		}
	}
	t.Fatalf("%s: expected a %q line, got %q", what, key, content)
	return 0
}

func atoiOrFail(t *testing.T, s, what string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: expected a number, got %q", what, s)
	}
	return n
}

// cgOOMKills counts the processes of pid's cgroup that the OOM killer killed
// (oom_kill of v1 memory.oom_control, v2 memory.events).
func cgOOMKills(t *testing.T, pid int) int {
	t.Helper()
	return keyedValue(t, readCgroupFileOf(t, pid, "memory", "memory.oom_control", "memory.events"), "oom_kill", "memory OOM counter")
}

// cgPidsMaxEvents counts the forks refused by pids.max (pids.events "max").
func cgPidsMaxEvents(t *testing.T, pid int) int {
	t.Helper()
	return keyedValue(t, readCgroupFileOf(t, pid, "pids", "pids.events", "pids.events"), "max", "pids.events")
}

// cgCPUThrottled is nr_throttled of cpu.stat (the same key on v1 and v2).
func cgCPUThrottled(t *testing.T, pid int) int {
	t.Helper()
	return keyedValue(t, readCgroupFileOf(t, pid, "cpu", "cpu.stat", "cpu.stat"), "nr_throttled", "cpu.stat")
}

// cgFreezerState is "FROZEN" or "THAWED" for pid's cgroup (v1 freezer.state;
// v2 the frozen key of cgroup.events, which has no controller to enable).
func cgFreezerState(t *testing.T, pid int) string {
	t.Helper()
	if layoutOf(t) != cgroupUnified {
		return readCgroupFileOf(t, pid, "freezer", "freezer.state", "")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("reading the cgroup of pid %d: %v", pid, err)
	}
	path := strings.TrimPrefix(strings.TrimSpace(string(data)), "0::")
	for _, m := range cgroupMounts(t) {
		if !m.v2 {
			continue
		}
		p := filepath.Join(underMount(m, path), "cgroup.events")
		ev, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		if keyedValue(t, string(ev), "frozen", p) == 1 {
			return "FROZEN"
		}
		return "THAWED"
	}
	t.Fatalf("cgroup v2: no cgroup2 mount in mountinfo")
	return ""
}
