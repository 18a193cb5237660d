package main

import (
	"math"
	"os"
	"regexp"
	"slices"
	"testing"
)

// testdata/switches.txt is real `perf script` output from one `berth run`
// (three sched_switch events, stacks cut short): berth's thread 3903 waits
// for an RCU grace period in its first cgroup.procs write and comes back
// when runc:[0:PARENT] (3908) sleeps; 3908 comes back when
// runc:[1:CHILD] is preempted.
func TestOffCPUFromPerfScript(t *testing.T) {
	f, err := os.Open("testdata/switches.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := parse(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(events) != 3 {
		t.Fatalf("expected 3 sched_switch events, got %d", len(events))
	}
	if got := events[0].stack[0]; got != "__schedule" {
		t.Errorf("expected the innermost frame without its offset, __schedule, got %q", got)
	}

	all := offCPU(events, regexp.MustCompile("."))
	if len(all) != 2 {
		t.Fatalf("expected 2 stretches (3903's and 3908's; 3911 never comes back), got %+v", all)
	}
	berth := all[0]
	if berth.tid != 3903 || berth.comm != "berth-sym" || berth.state != "D" {
		t.Errorf("expected berth-sym/3903 in state D first, got %s/%d %s", berth.comm, berth.tid, berth.state)
	}
	// 19976.474213 - 19976.459368
	if math.Abs(berth.ms-14.845) > 0.001 || berth.startMs != 0 {
		t.Errorf("expected 14.845 ms from +0, got %.3f ms from +%.3f", berth.ms, berth.startMs)
	}
	frames := meaningful(berth.stack, 20)
	if frames[0] != "wait_for_completion" || !slices.Contains(frames, "rcu_sync_enter") ||
		!slices.Contains(frames, "github.com/opencontainers/cgroups.WriteCgroupProc") {
		t.Errorf("expected the wait from wait_for_completion down to cgroups.WriteCgroupProc, got %v", frames)
	}
	if slices.Contains(frames, "schedule") || slices.Contains(frames, "do_syscall_64") {
		t.Errorf("expected scheduler and syscall-entry frames dropped, got %v", frames)
	}

	runc := offCPU(events, regexp.MustCompile(`^runc`))
	if len(runc) != 1 || runc[0].tid != 3908 || runc[0].state != "S" {
		t.Errorf("-comm ^runc: expected runc:[0:PARENT]/3908's sleep only, got %+v", runc)
	}
}
