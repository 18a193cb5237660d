// Command offcpu reads `perf script` output of sched:sched_switch events
// recorded with call graphs (perf record -e sched:sched_switch -g -a) and
// prints the longest stretches that matching threads spent off the CPU,
// each with the kernel and user frames it waited in.
//
// A thread leaves the CPU at a sched_switch whose prev_pid is its tid and
// comes back at the next one whose next_pid is. A stretch in state D is a
// wait in the kernel (an RCU grace period, I/O); S is a sleep the program
// chose (a futex, a pipe read): most of those are threads with nothing to
// do while another works. bench/offcpu.sh drives it for one `run` of each
// runtime.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// switchEvent is one sched_switch with the stack of the thread leaving.
type switchEvent struct {
	time             float64 // seconds
	prevComm, state  string
	prevTid, nextTid int
	stack            []string // innermost frame first, offsets dropped
}

// stretch is one time a thread spent off the CPU.
type stretch struct {
	ms, startMs float64
	comm, state string
	tid         int
	stack       []string
}

var header = regexp.MustCompile(` (\d+\.\d+): sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=.*? next_pid=(\d+)`)

// noise are frames every wait passes through; dropping them leaves the
// frames that say what was waited for.
var noise = []string{
	"__schedule", "schedule", "entry_SYSCALL", "do_syscall_64", "x64_sys_call",
	"internal/runtime/syscall", "syscall.Syscall", "syscall.RawSyscall",
	"runtime.goexit", "runtime.main", "main.main", "github.com/urfave/cli",
}

func main() {
	comm := flag.String("comm", ".", "regexp: only threads whose command name matches")
	top := flag.Int("top", 12, "print this many of the longest stretches")
	frames := flag.Int("frames", 8, "frames to print per stretch")
	minMs := flag.Float64("min", 0.2, "ignore stretches shorter than this (ms)")
	states := flag.String("state", "D", "thread states to report: D (waits in the kernel), S (sleeps), R (preempted)")
	flag.Parse()
	match, err := regexp.Compile(*comm)
	if err != nil {
		fmt.Fprintf(os.Stderr, "offcpu: -comm: %v\n", err)
		os.Exit(2)
	}
	events, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "offcpu: %v\n", err)
		os.Exit(1)
	}
	var stretches []stretch
	for _, s := range offCPU(events, match) {
		if strings.Contains(*states, s.state) {
			stretches = append(stretches, s)
		}
	}
	sort.Slice(stretches, func(i, j int) bool { return stretches[i].ms > stretches[j].ms })
	for i, s := range stretches {
		if i == *top || s.ms < *minMs {
			break
		}
		fmt.Printf("%7.2f ms at +%6.2f ms  %s/%d %s: %s\n", s.ms, s.startMs, s.comm, s.tid, s.state,
			strings.Join(meaningful(s.stack, *frames), " < "))
	}
}

// parse splits perf script output into events: a header line, then one
// frame per line ("ADDR SYMBOL+OFF (DSO)"), then a blank line.
func parse(r io.Reader) ([]switchEvent, error) {
	var events []switchEvent
	var cur *switchEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := header.FindStringSubmatch(line); m != nil {
			t, _ := strconv.ParseFloat(m[1], 64)
			prev, _ := strconv.Atoi(m[3])
			next, _ := strconv.Atoi(m[5])
			events = append(events, switchEvent{time: t, prevComm: m[2], prevTid: prev, state: m[4], nextTid: next})
			cur = &events[len(events)-1]
			continue
		}
		f := strings.Fields(line)
		if cur == nil || len(f) < 2 {
			continue
		}
		sym, _, _ := strings.Cut(f[1], "+0x")
		cur.stack = append(cur.stack, sym)
	}
	return events, sc.Err()
}

// offCPU pairs each switch-out of a matching thread with its next
// switch-in.
func offCPU(events []switchEvent, match *regexp.Regexp) []stretch {
	if len(events) == 0 {
		return nil
	}
	t0 := events[0].time
	away := map[int]switchEvent{}
	var out []stretch
	for _, e := range events {
		if left, ok := away[e.nextTid]; ok {
			delete(away, e.nextTid)
			out = append(out, stretch{
				ms: (e.time - left.time) * 1000, startMs: (left.time - t0) * 1000,
				comm: left.prevComm, state: left.state, tid: left.prevTid, stack: left.stack,
			})
		}
		if e.prevTid != 0 && match.MatchString(e.prevComm) {
			away[e.prevTid] = e
		}
	}
	return out
}

func meaningful(stack []string, n int) []string {
	var keep []string
	for _, f := range stack {
		skip := false
		for _, p := range noise {
			if strings.HasPrefix(f, p) {
				skip = true
				break
			}
		}
		if !skip {
			keep = append(keep, f)
		}
		if len(keep) == n {
			break
		}
	}
	return keep
}
