package integration

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestConfigResources(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle(func(s *specs.Spec) {
		var devices []specs.LinuxDeviceCgroup
		if s.Linux.Resources != nil {
			devices = s.Linux.Resources.Devices
		}
		s.Linux.Resources = &specs.LinuxResources{
			Devices: devices,
			Memory:  &specs.LinuxMemory{Limit: ptr(int64(128 << 20))},
			Pids:    &specs.LinuxPids{Limit: ptr(int64(64))},
			CPU: &specs.LinuxCPU{
				Shares: ptr(uint64(512)),
				Quota:  ptr(int64(20000)),
				Period: ptr(uint64(100000)),
				Cpus:   "0",
			},
		}
	}))
	checks := []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"pids", "pids.max", "64"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
	}
	for _, c := range checks {
		if got := readCgroup(t, pid, c.controller, c.file); got != c.want {
			t.Errorf("container %s from config.json: expected %s %s, got %q", id, c.file, c.want, got)
		}
	}
}

// statsEvent is the part of `events` output the tests look at.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *struct {
		Memory *struct {
			Usage struct {
				Limit uint64 `json:"limit"`
			} `json:"usage"`
		} `json:"memory"`
		Pids *struct {
			Limit uint64 `json:"limit"`
		} `json:"pids"`
		CPU *json.RawMessage `json:"cpu"`
	} `json:"data"`
}

func parseStats(t *testing.T, line, id, what string) statsEvent {
	t.Helper()
	var ev statsEvent
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("%s: expected a JSON event, got %v: %q", what, err, line)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data == nil || ev.Data.Memory == nil || ev.Data.Pids == nil || ev.Data.CPU == nil {
		t.Fatalf("%s: expected type stats, id %s and data with memory, pids and cpu, got %q", what, id, line)
	}
	return ev
}

func (e *env) stats(id string) statsEvent {
	e.t.Helper()
	r := e.mustBerth("events", "--stats", id)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1 {
		e.t.Errorf("events --stats: expected exactly one JSON object, got %q", r.stdout)
	}
	return parseStats(e.t, lines[0], id, "events --stats")
}

func TestEventsStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle(func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(100 << 20))}
	}))
	ev := e.stats(id)
	if ev.Data.Memory.Usage.Limit != 100<<20 {
		t.Errorf("events --stats: expected memory.usage.limit %d, got %d", 100<<20, ev.Data.Memory.Usage.Limit)
	}
}

func TestEventsInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.runDetached(e.bundle())
	events := e.startBerth(runOpts{}, "events", "--interval", "1s", id)
	defer func() {
		_ = events.cmd.Process.Kill()
		events.wait()
	}()
	// Events go to a file: wait for the first complete line.
	out := waitFileContains(t, events.outPath, "\n")
	line, _, _ := strings.Cut(out, "\n")
	parseStats(t, line, id, "events --interval 1s")
	// The process keeps running and printing until it is killed.
	waitFileContains(t, events.outPath, line+"\n{")
	if err := events.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("events --interval exited on its own: expected it to keep running (%v)", err)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())

	e.mustBerth("update", "--memory", "64M", id)
	if ev := e.stats(id); ev.Data.Memory.Usage.Limit != 67108864 {
		t.Errorf("update --memory 64M: expected events memory.usage.limit 67108864, got %d", ev.Data.Memory.Usage.Limit)
	}
	if got := readCgroup(t, pid, "memory", "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("update --memory 64M: expected memory.limit_in_bytes 67108864, got %q", got)
	}

	e.mustBerth("update", "--pids-limit", "10", id)
	if got := readCgroup(t, pid, "pids", "pids.max"); got != "10" {
		t.Errorf("update --pids-limit 10: expected pids.max 10, got %q", got)
	}
	if ev := e.stats(id); ev.Data.Pids.Limit != 10 {
		t.Errorf("update --pids-limit 10: expected events pids.limit 10, got %d", ev.Data.Pids.Limit)
	}

	e.mustBerth("update", "--cpu-quota", "50000", "--cpu-period", "100000", id)
	if got := readCgroup(t, pid, "cpu", "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("update --cpu-quota 50000: expected cpu.cfs_quota_us 50000, got %q", got)
	}
	if got := readCgroup(t, pid, "cpu", "cpu.cfs_period_us"); got != "100000" {
		t.Errorf("update --cpu-period 100000: expected cpu.cfs_period_us 100000, got %q", got)
	}

	resources := e.writeFile("resources.json", `{"memory":{"limit":100663296},"pids":{"limit":30}}`)
	e.mustBerth("update", "-r", resources, id)
	if got := readCgroup(t, pid, "memory", "memory.limit_in_bytes"); got != "100663296" {
		t.Errorf("update -r file: expected memory.limit_in_bytes 100663296, got %q", got)
	}
	if got := readCgroup(t, pid, "pids", "pids.max"); got != "30" {
		t.Errorf("update -r file: expected pids.max 30, got %q", got)
	}

	r := e.berthOpts(runOpts{stdin: strings.NewReader(`{"pids":{"limit":20}}`)}, "update", "-r", "-", id)
	wantCode(t, r, 0, "update -r - (resources on stdin)")
	if got := readCgroup(t, pid, "pids", "pids.max"); got != "20" {
		t.Errorf("update -r -: expected pids.max 20, got %q", got)
	}
	r = e.berthOpts(runOpts{stdin: strings.NewReader(`{"memory":{"limit":134217728}}`)}, "update", "--resources", "-", id)
	wantCode(t, r, 0, "update --resources -")
	if got := readCgroup(t, pid, "memory", "memory.limit_in_bytes"); got != "134217728" {
		t.Errorf("update --resources -: expected memory.limit_in_bytes 134217728, got %q", got)
	}

	// The container still works after all that.
	wantCode(t, e.berth("exec", id, "true"), 0, "exec after updates")
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Errorf("expected the container's init %d to be alive after updates: %v", pid, err)
	}
}

// rootDevice is the major:minor of the block device holding /, for blkio
// throttling (this kernel's blkio has throttle files but no weight).
func rootDevice(t *testing.T) (major, minor int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	major, minor = int64(st.Dev>>8&0xfff), int64(st.Dev&0xff|(st.Dev>>12)&0xfff00)
	if _, err := os.Stat("/sys/dev/block/" + strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)); err != nil {
		t.Skipf("/ is not on a block device (%d:%d): nothing to throttle", major, minor)
	}
	return major, minor
}

func TestBlkioThrottle(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"); err != nil {
		t.Skip("no cgroup v1 blkio throttle files on this host")
	}
	major, minor := rootDevice(t)
	dev := strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle(args("sleep", "100"), func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1 << 20}},
		}
	}))
	if got := readCgroup(t, pid, "blkio", "blkio.throttle.read_bps_device"); got != dev+" 1048576" {
		t.Errorf("container %s from config.json: expected read_bps_device %q, got %q", id, dev+" 1048576", got)
	}
	res := `{"blockIO": {"throttleWriteIOPSDevice": [{"major": ` + strconv.FormatInt(major, 10) + `, "minor": ` + strconv.FormatInt(minor, 10) + `, "rate": 500}]}}`
	e.mustBerth("update", "-r", e.writeFile("blkio.json", res), id)
	if got := readCgroup(t, pid, "blkio", "blkio.throttle.write_iops_device"); got != dev+" 500" {
		t.Errorf("after update -r: expected write_iops_device %q, got %q", dev+" 500", got)
	}
	if got := readCgroup(t, pid, "blkio", "blkio.throttle.read_bps_device"); got != dev+" 1048576" {
		t.Errorf("after update -r: read_bps_device should keep %q, got %q", dev+" 1048576", got)
	}
}
