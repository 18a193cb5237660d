package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/types"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "print a container's OOM events and resource statistics as JSON",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "time between statistics"},
		&cli.BoolFlag{Name: "stats", Usage: "print the statistics once and exit"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		interval := c.Duration("interval")
		if interval <= 0 {
			return errors.New("--interval: must be greater than 0")
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		status, err := ct.Status()
		if err != nil {
			return err
		}
		if status == libcontainer.Stopped {
			return fmt.Errorf("container %s is not running", ct.ID())
		}
		enc := json.NewEncoder(os.Stdout)
		emitStats := func() error {
			s, err := ct.Stats()
			if err != nil {
				return fmt.Errorf("stats %s: %w", ct.ID(), err)
			}
			return enc.Encode(types.Event{Type: "stats", ID: ct.ID(), Data: convertStats(s)})
		}
		if c.Bool("stats") {
			return emitStats()
		}
		oom, err := ct.NotifyOOM()
		if err != nil {
			return fmt.Errorf("events %s: %w", ct.ID(), err)
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case _, ok := <-oom:
				if !ok {
					return nil // the cgroup is gone: the container stopped
				}
				if err := enc.Encode(types.Event{Type: "oom", ID: ct.ID()}); err != nil {
					return err
				}
			case <-tick.C:
				if err := emitStats(); err != nil {
					logrus.Error(err)
				}
			}
		}
	},
}

// convertStats reshapes libcontainer's statistics into the JSON document
// runc's `events` prints (github.com/opencontainers/runc/types), which
// containerd's shim decodes.
func convertStats(ls *libcontainer.Stats) *types.Stats {
	cg := ls.CgroupStats
	if cg == nil {
		return nil
	}
	s := &types.Stats{NetworkInterfaces: ls.Interfaces}
	s.Pids = types.Pids{Current: cg.PidsStats.Current, Limit: cg.PidsStats.Limit}

	cu := cg.CpuStats.CpuUsage
	s.CPU.Usage = types.CpuUsage{
		Total: cu.TotalUsage, Kernel: cu.UsageInKernelmode, User: cu.UsageInUsermode,
		Percpu: cu.PercpuUsage, PercpuKernel: cu.PercpuUsageInKernelmode, PercpuUser: cu.PercpuUsageInUsermode,
	}
	th := cg.CpuStats.ThrottlingData
	s.CPU.Throttling = types.Throttling{Periods: th.Periods, ThrottledPeriods: th.ThrottledPeriods, ThrottledTime: th.ThrottledTime}
	s.CPU.PSI = cg.CpuStats.PSI
	s.CPUSet = types.CPUSet(cg.CPUSetStats)

	m := cg.MemoryStats
	s.Memory = types.Memory{
		Cache:     m.Cache,
		Usage:     memoryEntry(m.Usage),
		Swap:      memoryEntry(m.SwapUsage),
		Kernel:    memoryEntry(m.KernelUsage),
		KernelTCP: memoryEntry(m.KernelTCPUsage),
		Raw:       m.Stats,
		PSI:       m.PSI,
	}

	b := cg.BlkioStats
	s.Blkio = types.Blkio{
		IoServiceBytesRecursive: blkioEntries(b.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(b.IoServicedRecursive),
		IoQueuedRecursive:       blkioEntries(b.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkioEntries(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkioEntries(b.IoWaitTimeRecursive),
		IoMergedRecursive:       blkioEntries(b.IoMergedRecursive),
		IoTimeRecursive:         blkioEntries(b.IoTimeRecursive),
		SectorsRecursive:        blkioEntries(b.SectorsRecursive),
		PSI:                     b.PSI,
	}

	s.Hugetlb = make(map[string]types.Hugetlb, len(cg.HugetlbStats))
	for size, h := range cg.HugetlbStats {
		s.Hugetlb[size] = types.Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return s
}

func memoryEntry(d cgroups.MemoryData) types.MemoryEntry {
	return types.MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func blkioEntries(in []cgroups.BlkioStatEntry) []types.BlkioEntry {
	out := make([]types.BlkioEntry, len(in))
	for i, e := range in {
		out[i] = types.BlkioEntry(e)
	}
	return out
}
