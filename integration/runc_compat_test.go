package integration

// Places where runc's own integration suite (tests/integration/*.bats,
// v1.5.1) caught berth behaving differently from runc: each test here is
// the berth side of one of them.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/testenv"
)

// lookPathOrSkip finds a command the test needs. Without it the test is
// skipped, except under CI=true, where a missing tool is a failure.
func lookPathOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s is not installed: the test needs it", name)
	}
	return p
}

// receivedFD is the outcome of waiting for one fd on a unix socket.
type receivedFD struct {
	fd  int
	err error
}

// pidfdListener listens on a new unix socket, as a caller of
// --pidfd-socket does, and returns its path and a channel that delivers the
// one file descriptor the runtime's process sends over it (SCM_RIGHTS).
// The fd is closed at the end of the test.
func (e *env) pidfdListener() (string, <-chan receivedFD) {
	e.t.Helper()
	path := filepath.Join(e.mkdir("pidfd"), "sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ln.Close() })
	ch := make(chan receivedFD, 1)
	go func() {
		fd, err := acceptFD(ln)
		ch <- receivedFD{fd, err}
	}()
	e.t.Cleanup(func() {
		// The fd, if one came, whether or not the test read the channel.
		select {
		case r := <-ch:
			if r.err == nil {
				unix.Close(r.fd)
			}
		default:
		}
	})
	return path, ch
}

// acceptFD accepts one connection and reads one fd from it, for at most
// cmdTimeout.
func acceptFD(ln *net.UnixListener) (int, error) {
	if err := ln.SetDeadline(time.Now().Add(cmdTimeout)); err != nil {
		return -1, err
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		return -1, fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(cmdTimeout)); err != nil {
		return -1, err
	}
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("expected one control message, got %d (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("expected one fd, got %d (%v)", len(fds), err)
	}
	return fds[0], nil
}

// waitFD waits for the fd a pidfdListener receives.
func waitFD(t *testing.T, ch <-chan receivedFD) int {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("--pidfd-socket: receiving the pidfd: %v", r.err)
		}
		return r.fd
	case <-time.After(cmdTimeout + waitTimeout):
		t.Fatalf("--pidfd-socket: no fd received within %v", cmdTimeout+waitTimeout)
	}
	return -1
}

// pidfdPid is the pid (in this test's pid namespace) that fd, a pidfd of
// this process, refers to, from the "Pid:" line of its fdinfo; it fails the
// test if fd is not a pidfd.
func pidfdPid(t *testing.T, fd int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatalf("reading the fdinfo of the received fd %d: %v", fd, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == "Pid" {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("fdinfo of fd %d: Pid %q is not a number", fd, v)
			}
			return pid
		}
	}
	t.Fatalf("the received fd %d is not a pidfd: its fdinfo has no Pid line: %q", fd, data)
	return 0
}

// killThroughPidfd sends SIGKILL through the pidfd.
func killThroughPidfd(t *testing.T, fd int) {
	t.Helper()
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Fatalf("pidfd_send_signal(SIGKILL) through the received pidfd: %v", err)
	}
}

// --pidfd-socket: the process (a container's init, or an exec'd process)
// sends a pidfd of itself to the socket, as runc 1.5 does; containerd
// uses it to signal and wait without pid reuse races.
func TestPidfdSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle()

	for _, how := range []string{"create", "run -d"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := e.with(t)
			sock, ch := e.pidfdListener()
			id := e.newID()
			cmd := append(strings.Fields(how), "--pidfd-socket", sock, "-b", bundle, id)
			e.mustBerth(cmd...)
			fd := waitFD(t, ch)
			st := e.state(id)
			if got := pidfdPid(t, fd); got != st.Pid {
				t.Fatalf("%s --pidfd-socket: expected a pidfd of the init, pid %d, got one of pid %d", how, st.Pid, got)
			}
			killThroughPidfd(t, fd)
			e.waitStatus(id, "stopped")
		})
	}

	t.Run("exec -d", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, initPid := e.runDetached(bundle)
		sock, ch := e.pidfdListener()
		pidFile := filepath.Join(e.mkdir("pid"), "exec.pid")
		e.mustBerth("exec", "-d", "--pid-file", pidFile, "--pidfd-socket", sock, id, "sleep", "3600")
		fd := waitFD(t, ch)
		execPid := readPidFile(t, pidFile)
		if got := pidfdPid(t, fd); got != execPid {
			t.Fatalf("exec --pidfd-socket: expected a pidfd of the exec'd process, pid %d, got one of pid %d", execPid, got)
		}
		killThroughPidfd(t, fd)
		if !poll(func() bool { s := procState(execPid); return s == "" || s == "Z" }) {
			t.Errorf("exec'd process %d still alive %v after SIGKILL through its pidfd (state %q)", execPid, waitTimeout, procState(execPid))
		}
		if st := e.state(id); st.Status != "running" || st.Pid != initPid {
			t.Errorf("after killing the exec'd process: expected the container still running with init %d, got %+v", initPid, st)
		}
	})

	t.Run("socket not there", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		missing := filepath.Join(e.mkdir("pidfd"), "nosuch.sock")
		id := e.newID()
		r := e.berth("run", "-d", "--pidfd-socket", missing, "-b", bundle, id)
		wantFail(t, r, "run -d with a --pidfd-socket nobody listens on")
		wantContains(t, r.stderr, "--pidfd-socket "+missing, "the error")
		wantFail(t, e.berth("state", id), "state after the failed run")
		assertNoLeftovers(t, e.root, id)
	})
}

// Signal 0 is kill(2)'s liveness probe: it succeeds on a running
// container, fails with runc's "container not running" on a stopped one,
// and with --all (what containerd sends on its way to delete) a stopped
// container is no error.
func TestKillSignalZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, pid := e.runDetached(e.bundle())
	wantCode(t, e.berth("kill", id, "0"), 0, "kill 0 of a running container")
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Errorf("after kill 0: expected the container still running with pid %d, got %+v", pid, st)
	}
	e.mustBerth("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	r := e.berth("kill", id, "0")
	wantFail(t, r, "kill 0 of a stopped container")
	wantContains(t, r.stderr, "container not running", "kill 0 of a stopped container")
	wantCode(t, e.berth("kill", "-a", id, "0"), 0, "kill -a 0 of a stopped container")
	for _, bad := range []string{"65", "100"} {
		r := e.berth("kill", id, bad)
		wantFail(t, r, "kill with signal "+bad)
		wantContains(t, r.stderr, "out of range", "kill with signal "+bad)
	}
}

// A --root that was given must exist; only the default root may be missing
// (no container made yet), as in runc.
func TestListMissingRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	missing := filepath.Join(e.base, "nosuch")
	r := runCmd(t, runOpts{}, e.bin, "--root", missing, "list")
	wantFail(t, r, "list with a --root that does not exist")
	wantContains(t, r.stderr, missing, "the error")
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list must not create its --root %s (stat: %v)", missing, err)
	}

	// The default root, /run/berth, hidden: a private mount namespace with
	// an empty /run, so the host's own /run is not touched.
	unshare := lookPathOrSkip(t, "unshare")
	r = runCmd(t, runOpts{}, unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs berth-test /run && exec "$0" list`, e.bin)
	wantCode(t, r, 0, "list with the default root missing")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ID") {
		t.Errorf("list with the default root missing: expected the table header only, got %q", r.stdout)
	}
}

// `update` of cpu.idle alone must not write the configured cpu.shares
// back: the kernel refuses shares on an idle group. runc sets shares to 0
// (not written) when idle comes without them.
func TestUpdateCPUIdleWithoutShares(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shares, quota, period := uint64(100), int64(500000), uint64(1000000)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period}
	})))
	idleFile := filepath.Join(cgroupDir(t, pid, "cpu"), "cpu.idle")
	if _, err := os.Stat(idleFile); err != nil {
		t.Skipf("this kernel has no cpu.idle in the container's cpu cgroup (%v): SCHED_IDLE groups came in Linux 5.15", err)
	}
	wantIdle := func(want, what string) {
		t.Helper()
		data, err := os.ReadFile(idleFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(data)); got != want {
			t.Errorf("%s: expected cpu.idle %s, got %s", what, want, got)
		}
	}
	wantIdle("0", "after run")
	for _, v := range []string{"1", "0", "1"} {
		doc := e.writeFile("resources.json", `{"cpu": {"idle": `+v+`}}`)
		wantCode(t, e.berth("update", "-r", doc, id), 0, "update -r {cpu: {idle: "+v+"}}")
		wantIdle(v, "update -r {cpu: {idle: "+v+"}}")
	}
	for _, v := range []string{"1", "0", "1"} {
		wantCode(t, e.berth("update", "--cpu-idle", v, id), 0, "update --cpu-idle "+v)
		wantIdle(v, "update --cpu-idle "+v)
	}
	// Another setting leaves the group idle (and writes no shares).
	wantCode(t, e.berth("update", "--cpu-period", "10000", id), 0, "update --cpu-period of an idle group")
	wantIdle("1", "update --cpu-period")
}

// blockDevice returns "major:minor" of a whole disk of this host, for
// per-device throttles.
func blockDevice(t *testing.T) (major, minor int64) {
	t.Helper()
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Fatalf("listing /sys/block: %v", err)
	}
	// A disk with a device behind it (vda, sda, nvme0n1) before virtual
	// ones (loop, zram).
	slices.SortStableFunc(ents, func(a, b os.DirEntry) int {
		return boolInt(!exists(filepath.Join("/sys/block", a.Name(), "device"))) -
			boolInt(!exists(filepath.Join("/sys/block", b.Name(), "device")))
	})
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join("/sys/block", ent.Name(), "dev"))
		if err != nil {
			continue
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(data)), "%d:%d", &major, &minor); err == nil {
			return major, minor
		}
	}
	t.Skip("this host has no block device in /sys/block to throttle")
	return 0, 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A config may list a device twice in a throttle list; the cgroup gets the
// entries in order, so the last one is in force, and `update` must change
// that one (runc upserts from the end), not the first.
func TestUpdateBlkioThrottleDuplicateDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	major, minor := blockDevice(t)
	dev := fmt.Sprintf("%d:%d", major, minor)
	id, pid := e.runDetached(e.bundle(withResources(func(r *specs.LinuxResources) {
		r.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 485760},
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 485760},
		}}
	})))
	doc := e.writeFile("resources.json", fmt.Sprintf(`{"blockIO": {
		"throttleReadBpsDevice": [{"major": %[1]d, "minor": %[2]d, "rate": 10485760}],
		"throttleWriteBpsDevice": [{"major": %[1]d, "minor": %[2]d, "rate": 9437184}],
		"throttleReadIOPSDevice": [{"major": %[1]d, "minor": %[2]d, "rate": 1000}],
		"throttleWriteIOPSDevice": [{"major": %[1]d, "minor": %[2]d, "rate": 900}]}}`, major, minor))
	wantCode(t, e.berth("update", "-r", doc, id), 0, "update -r of per-device throttles")

	if layoutOf(t) == cgroupUnified {
		io := readFileTrim(t, filepath.Join(cgroupDir(t, pid, "io"), "io.max"))
		want := dev + " rbps=10485760 wbps=9437184 riops=1000 wiops=900"
		if !slices.Contains(strings.Split(io, "\n"), want) {
			t.Errorf("after update: expected io.max to have %q, got %q", want, io)
		}
		return
	}
	dir := cgroupDir(t, pid, "blkio")
	for file, want := range map[string]string{
		"blkio.throttle.read_bps_device":   "10485760",
		"blkio.throttle.write_bps_device":  "9437184",
		"blkio.throttle.read_iops_device":  "1000",
		"blkio.throttle.write_iops_device": "900",
	} {
		got := readFileTrim(t, filepath.Join(dir, file))
		if !slices.Contains(strings.Split(got, "\n"), dev+" "+want) {
			t.Errorf("after update: expected %s to have %q, got %q", file, dev+" "+want, got)
		}
	}
}

func readFileTrim(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return strings.TrimSpace(string(data))
}

// installAs puts a copy of the runtime binary, named name, in a directory
// of its own (not one that holds the state root, so libcontainer's sealed
// overlayfs copy of itself can be used) and returns its path.
func (e *env) installAs(name string) string {
	e.t.Helper()
	p := filepath.Join(e.mkdir("bin"), name)
	// cp, not a write from this process: a file this process has open for
	// writing can be inherited by a parallel test's fork, and exec'ing it
	// then fails with ETXTBSY.
	if out, err := exec.Command("cp", e.bin, p).CombinedOutput(); err != nil {
		e.t.Fatalf("cp %s %s: %v: %s", e.bin, p, err, out)
	}
	return p
}

// Error texts that scripts and runc's tests match use runc's wording, and
// name the program as it was invoked: berth installed as runc reads like
// runc.
func TestRuncErrorWording(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("exec in a paused container", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		id, _ := e.runDetached(e.bundle())
		e.mustBerth("pause", id)
		r := e.berth("exec", id, "true")
		wantCode(t, r, 255, "exec in a paused container")
		wantContains(t, r.stderr, "cannot exec in a paused container (use --ignore-paused to override)", "exec in a paused container")
		e.mustBerth("resume", id)
	})

	t.Run("poststart hook", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		bundle := e.bundle(args("true"), func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/false"}}}
		})
		id := e.newID()
		r := e.berth("run", "-b", bundle, id)
		wantFail(t, r, "run with a failing second poststart hook")
		wantContains(t, r.stderr, "error running poststart hook #1: ", "run with a failing second poststart hook")
	})

	// A process that cannot be started fails inside libcontainer, after the
	// container was made: the message is prefixed with the command.
	for _, name := range []string{"runc", filepath.Base(e.bin)} {
		t.Run("invoked as "+name, func(t *testing.T) {
			t.Parallel()
			e := e.with(t)
			link := filepath.Join(e.mkdir("bin"), name)
			if err := os.Symlink(e.bin, link); err != nil {
				t.Fatal(err)
			}
			bundle := e.bundle(args("/nonexistent-program"))
			for _, cmd := range []string{"create", "run"} {
				id := e.newID()
				r := runCmd(t, runOpts{}, link, "--root", e.root, cmd, "-b", bundle, id)
				wantFail(t, r, cmd+" of a program that does not exist")
				wantContains(t, r.stderr, name+" "+cmd+" failed: ", cmd+" of a program that does not exist")
				assertNoLeftovers(t, e.root, id)
			}
		})
	}

	// runc's fd-leak check allows its sealed copy of itself as "/runc" (the
	// overlayfs copy) or a "runc_cloned" memfd: berth installed as runc must
	// show nothing else, and nothing named berth.
	t.Run("sealed copy of itself", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		runc := e.installAs("runc")
		id := e.randomTracked(runc)
		runCmdOK(t, runc, "--root", e.root, "create", "-b", e.bundle(), id)
		st := e.state(id)
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.Pid))
		if err != nil {
			t.Fatalf("listing the fds of the init %d: %v", st.Pid, err)
		}
		var self []string
		for _, ent := range ents {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", st.Pid, ent.Name()))
			if err != nil {
				continue
			}
			if strings.Contains(target, filepath.Base(e.bin)) && filepath.Base(e.bin) != "runc" {
				t.Errorf("fd %s of the init of berth installed as runc names %q: %q", ent.Name(), filepath.Base(e.bin), target)
			}
			if target == "/runc" || target == "/memfd:runc_cloned:/proc/self/exe (deleted)" {
				self = append(self, target)
			}
		}
		if len(self) != 1 {
			t.Errorf("expected the init to hold one sealed copy of the runtime, as /runc or a runc_cloned memfd, got %q", self)
		}
	})
}

// randomTracked returns a fresh container id whose cleanup uses bin.
func (e *env) randomTracked(bin string) string {
	id := randomID("bt-")
	e.track(bin, e.root, id)
	return id
}

func runCmdOK(t *testing.T, bin string, a ...string) result {
	t.Helper()
	r := runCmd(t, runOpts{}, bin, a...)
	if r.code != 0 {
		t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

// Capability numbers of the three newest capabilities (Linux 5.8, 5.9).
const (
	capPerfmon           = 38
	capBPF               = 39
	capCheckpointRestore = 40
)

// A capability berth knows but the running kernel lacks is dropped with a
// warning, as runc does: engines send the newest list to older kernels.
// (A name no kernel knows is refused: TestUnknownCapabilityRejected.) On a
// kernel that has all three newest capabilities, berth runs in a mount
// namespace where /proc/sys/kernel/cap_last_cap, where berth learns what
// the kernel has, says 37; the container itself still runs on the real
// kernel, and would get the capabilities if berth passed them on.
func TestCapabilityKernelLacksDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	last, err := strconv.Atoi(readFileTrim(t, "/proc/sys/kernel/cap_last_cap"))
	if err != nil {
		t.Fatalf("cap_last_cap: %v", err)
	}
	// wrap runs the runtime so that it sees a kernel that lacks some of the
	// newest capabilities.
	wrap := func(a ...string) (string, []string) { return e.bin, a }
	if last >= capCheckpointRestore {
		unshare := lookPathOrSkip(t, "unshare")
		last = capPerfmon - 1
		fake := e.writeFile("cap_last_cap", strconv.Itoa(last)+"\n")
		wrap = func(a ...string) (string, []string) {
			return unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c",
				`mount --bind "$0" /proc/sys/kernel/cap_last_cap && exec "$@"`, fake, e.bin}, a...)
		}
	}
	newest := map[string]uint{"CAP_PERFMON": capPerfmon, "CAP_BPF": capBPF, "CAP_CHECKPOINT_RESTORE": capCheckpointRestore}
	bundle := e.bundle(shell("grep CapBnd /proc/self/status"), func(s *specs.Spec) {
		c := s.Process.Capabilities
		for name := range newest {
			c.Bounding = append(c.Bounding, name)
			c.Permitted = append(c.Permitted, name)
			c.Effective = append(c.Effective, name)
		}
	})
	// wantDropped checks the CapBnd line a process printed, and the
	// warning, for the capabilities the process asked for.
	wantDropped := func(t *testing.T, r result, asked []string, what string) {
		t.Helper()
		bnd := statusField(t, r.stdout, "CapBnd")
		for _, name := range asked {
			bit := newest[name]
			if int(bit) <= last {
				continue
			}
			if capBit(t, bnd, bit) {
				t.Errorf("%s: expected %s (%d, above the kernel's last, %d) dropped, CapBnd is %s", what, name, bit, last, bnd)
			}
			wantContains(t, r.stderr, name, what+": the warning")
		}
		wantContains(t, r.stderr, "ignoring capabilities this kernel does not have", what+": the warning")
		if !capBit(t, bnd, uint(unix.CAP_KILL)) {
			t.Errorf("%s: expected CAP_KILL kept, CapBnd is %s", what, bnd)
		}
	}

	t.Run("run", func(t *testing.T) {
		bin, a := wrap("--root", e.root, "run", "-b", bundle, e.newID())
		r := runCmd(t, runOpts{}, bin, a...)
		wantCode(t, r, 0, "run with capabilities the kernel lacks")
		wantDropped(t, r, []string{"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}, "run")
	})

	t.Run("exec --cap", func(t *testing.T) {
		id, _ := e.runDetached(e.bundle())
		bin, a := wrap("--root", e.root, "exec", "--cap", "CAP_BPF", "--cap", "CAP_CHECKPOINT_RESTORE", id,
			"grep", "CapBnd", "/proc/self/status")
		r := runCmd(t, runOpts{}, bin, a...)
		wantCode(t, r, 0, "exec --cap of capabilities the kernel lacks")
		wantDropped(t, r, []string{"CAP_BPF", "CAP_CHECKPOINT_RESTORE"}, "exec --cap")
	})
}
