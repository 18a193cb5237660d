package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/docker/go-units"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change a running container's resource limits",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "JSON file of runtime-spec linux.resources to apply, '-' for stdin; other flags are then ignored"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "block IO weight, 10 to 1000"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CFS period (microseconds); 0 for the system default"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CFS quota (microseconds) per period"},
		&cli.StringFlag{Name: "cpu-burst", Usage: "CFS burst (microseconds) per period"},
		&cli.StringFlag{Name: "cpu-share", Usage: "CPU shares (relative weight)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "realtime period (microseconds)"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "realtime runtime (microseconds) per period"},
		&cli.StringFlag{Name: "cpu-idle", Usage: "1 to make the cgroup SCHED_IDLE, 0 for normal"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use, e.g. 0-2,4"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit, e.g. 64M; -1 for none"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory+swap limit; -1 for unlimited swap"},
		&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of processes"},
		&cli.StringFlag{Name: "kernel-memory", Hidden: true, Usage: "(obsolete, ignored)"},
		&cli.StringFlag{Name: "kernel-memory-tcp", Hidden: true, Usage: "(obsolete, ignored)"},
		&cli.StringFlag{Name: "l3-cache-schema", Usage: "Intel RDT/CAT L3 cache schema"},
		&cli.StringFlag{Name: "mem-bw-schema", Usage: "Intel RDT/MBA memory bandwidth schema"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		r, err := requestedResources(c)
		if err != nil {
			return err
		}
		cfg := ct.Config()
		applyResources(cfg.Cgroups.Resources, r)
		if s := c.String("l3-cache-schema"); s != "" {
			if cfg.IntelRdt == nil {
				return fmt.Errorf("--l3-cache-schema: the container has no Intel RDT configuration")
			}
			cfg.IntelRdt.L3CacheSchema = s
		}
		if s := c.String("mem-bw-schema"); s != "" {
			if cfg.IntelRdt == nil {
				return fmt.Errorf("--mem-bw-schema: the container has no Intel RDT configuration")
			}
			cfg.IntelRdt.MemBwSchema = s
		}
		// Device rules are set once at create; rewriting them on a live
		// container would briefly deny its devices.
		cfg.Cgroups.SkipDevices = true
		if err := ct.Set(cfg); err != nil {
			return fmt.Errorf("update %s: %w", ct.ID(), err)
		}
		return nil
	},
}

// requestedResources reads -r, or else builds the request from the flags.
func requestedResources(c *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{},
		CPU:     &specs.LinuxCPU{},
		BlockIO: &specs.LinuxBlockIO{},
		Pids:    &specs.LinuxPids{},
	}
	if in := c.String("resources"); in != "" {
		var src io.Reader = os.Stdin
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, fmt.Errorf("--resources: %w", err)
			}
			defer f.Close()
			src = f
		}
		if err := json.NewDecoder(src).Decode(r); err != nil {
			return nil, fmt.Errorf("--resources %s: %w", in, err)
		}
		// A document may leave whole sections out.
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		if r.Pids == nil {
			r.Pids = &specs.LinuxPids{}
		}
		return r, nil
	}
	if v := c.Int("blkio-weight"); v != 0 {
		if v < 10 || v > 1000 {
			return nil, fmt.Errorf("--blkio-weight: %d is outside 10-1000", v)
		}
		w := uint16(v)
		r.BlockIO.Weight = &w
	}
	r.CPU.Cpus = c.String("cpuset-cpus")
	r.CPU.Mems = c.String("cpuset-mems")
	for _, f := range []struct {
		flag string
		dst  **uint64
	}{{"cpu-period", &r.CPU.Period}, {"cpu-burst", &r.CPU.Burst}, {"cpu-share", &r.CPU.Shares}, {"cpu-rt-period", &r.CPU.RealtimePeriod}} {
		if v := c.String(f.flag); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s: %q is not a non-negative integer", f.flag, v)
			}
			*f.dst = &n
		}
	}
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"cpu-quota", &r.CPU.Quota}, {"cpu-rt-runtime", &r.CPU.RealtimeRuntime}, {"cpu-idle", &r.CPU.Idle}} {
		if v := c.String(f.flag); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s: %q is not an integer", f.flag, v)
			}
			*f.dst = &n
		}
	}
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"memory", &r.Memory.Limit}, {"memory-swap", &r.Memory.Swap}, {"memory-reservation", &r.Memory.Reservation}} {
		if v := c.String(f.flag); v != "" {
			n := int64(-1)
			if v != "-1" {
				var err error
				if n, err = units.RAMInBytes(v); err != nil {
					return nil, fmt.Errorf("--%s: %q is not a size: %w", f.flag, v, err)
				}
			}
			*f.dst = &n
		}
	}
	if c.String("kernel-memory") != "" || c.String("kernel-memory-tcp") != "" {
		logrus.Warn("kernel memory settings are ignored (obsolete)")
	}
	if c.IsSet("pids-limit") {
		n := int64(c.Int("pids-limit"))
		r.Pids.Limit = &n
	}
	return r, nil
}

// applyResources merges the requested changes into the container's cgroup
// resources; what the request leaves unset keeps its current value.
func applyResources(res *cgroups.Resources, r *specs.LinuxResources) {
	// Without swap, an unlimited memory limit must lift the swap limit too,
	// or the kernel refuses memory > memsw.
	if r.Memory.Limit != nil && *r.Memory.Limit == -1 && r.Memory.Swap == nil {
		zero := int64(0)
		r.Memory.Swap = &zero
	}
	setIf(&res.Memory, r.Memory.Limit)
	setIf(&res.MemoryReservation, r.Memory.Reservation)
	setIf(&res.MemorySwap, r.Memory.Swap)
	if r.Memory.CheckBeforeUpdate != nil {
		res.MemoryCheckBeforeUpdate = *r.Memory.CheckBeforeUpdate
	}

	// CFS period and quota only make sense together: a lone value keeps
	// the other one as it is.
	if r.CPU.Period != nil {
		res.CpuPeriod = *r.CPU.Period
	}
	if r.CPU.Quota != nil {
		res.CpuQuota = *r.CPU.Quota
	}
	if r.CPU.Burst != nil {
		res.CpuBurst = r.CPU.Burst
	}
	// The kernel refuses any cpu.shares (v1) or cpu.weight (v2) write to an
	// idle group, so an idle change that comes without shares must not
	// write back the configured ones: as runc, shares become 0, which
	// libcontainer leaves unwritten, now and in later updates.
	if r.CPU.Idle != nil && r.CPU.Shares == nil {
		r.CPU.Shares = new(uint64)
	}
	if r.CPU.Shares != nil {
		res.CpuShares = *r.CPU.Shares
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*r.CPU.Shares)
	}
	setIf(&res.CpuRtPeriod, r.CPU.RealtimePeriod)
	setIf(&res.CpuRtRuntime, r.CPU.RealtimeRuntime)
	if r.CPU.Idle != nil {
		res.CPUIdle = r.CPU.Idle
	}
	if r.CPU.Cpus != "" {
		res.CpusetCpus = r.CPU.Cpus
	}
	if r.CPU.Mems != "" {
		res.CpusetMems = r.CPU.Mems
	}

	if r.Pids.Limit != nil {
		res.PidsLimit = r.Pids.Limit
	}

	setIf(&res.BlkioWeight, r.BlockIO.Weight)
	setIf(&res.BlkioLeafWeight, r.BlockIO.LeafWeight)
	for _, d := range r.BlockIO.WeightDevice {
		res.BlkioWeightDevice = upsertWeight(res.BlkioWeightDevice, d)
	}
	for _, t := range []struct {
		in  []specs.LinuxThrottleDevice
		out *[]*cgroups.ThrottleDevice
	}{
		{r.BlockIO.ThrottleReadBpsDevice, &res.BlkioThrottleReadBpsDevice},
		{r.BlockIO.ThrottleWriteBpsDevice, &res.BlkioThrottleWriteBpsDevice},
		{r.BlockIO.ThrottleReadIOPSDevice, &res.BlkioThrottleReadIOPSDevice},
		{r.BlockIO.ThrottleWriteIOPSDevice, &res.BlkioThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			*t.out = upsertThrottle(*t.out, d)
		}
	}
	if r.Unified != nil {
		res.Unified = r.Unified
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// upsertThrottle changes the rate of device d in list, or adds it. A list
// may name a device twice (config.json does not forbid it); the entries are
// written to the cgroup in order, so the last one is the one in force, and
// the one to change.
func upsertThrottle(list []*cgroups.ThrottleDevice, d specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	for _, e := range slices.Backward(list) {
		if e.Major == d.Major && e.Minor == d.Minor {
			e.Rate = d.Rate
			return list
		}
	}
	return append(list, cgroups.NewThrottleDevice(d.Major, d.Minor, d.Rate))
}

// upsertWeight is upsertThrottle for per-device weights: a weight the
// request leaves out keeps its value.
func upsertWeight(list []*cgroups.WeightDevice, d specs.LinuxWeightDevice) []*cgroups.WeightDevice {
	for _, e := range slices.Backward(list) {
		if e.Major == d.Major && e.Minor == d.Minor {
			setIf(&e.Weight, d.Weight)
			setIf(&e.LeafWeight, d.LeafWeight)
			return list
		}
	}
	var w, lw uint16
	setIf(&w, d.Weight)
	setIf(&lw, d.LeafWeight)
	return append(list, cgroups.NewWeightDevice(d.Major, d.Minor, w, lw))
}
