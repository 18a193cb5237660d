package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens on a unix socket for the pty master that the
// runtime sends with --console-socket. recv returns the master (or fails
// the test).
func (e *env) consoleSocket() (path string, recv func() *os.File) {
	e.t.Helper()
	path = filepath.Join(e.mkdir("cs"), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		e.t.Fatal(err)
	}
	type got struct {
		f   *os.File
		err error
	}
	ch := make(chan got, 1)
	go func() {
		defer ln.Close()
		_ = ln.SetDeadline(time.Now().Add(cmdTimeout))
		conn, err := ln.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(cmdTimeout))
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4*4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{err: err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			ch <- got{err: errors.Join(errors.New("no control message with the pty master"), err)}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			ch <- got{err: errors.Join(errors.New("expected exactly one fd"), err)}
			return
		}
		// Non-blocking, so that reads have deadlines and Close stops them.
		_ = unix.SetNonblock(fds[0], true)
		ch <- got{f: os.NewFile(uintptr(fds[0]), "pty-master")}
	}()
	t := e.t
	return path, func() *os.File {
		t.Helper()
		g := <-ch
		if g.err != nil {
			t.Fatalf("receiving the pty master on the console socket: %v", g.err)
		}
		t.Cleanup(func() { g.f.Close() })
		return g.f
	}
}

// ptyOutput collects everything read from a pty master.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func readPty(r interface{ Read([]byte) (int, error) }) *ptyOutput {
	o := &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor polls until the output contains substr. If retry is not nil it is
// called before every check every second (to re-send a command).
func (o *ptyOutput) waitFor(t *testing.T, substr string, retry func()) {
	t.Helper()
	var last time.Time
	ok := poll(func() bool {
		if retry != nil && time.Since(last) > time.Second {
			retry()
			last = time.Now()
		}
		// Output read from a pty may begin with a NUL byte: compare loosely.
		return strings.Contains(o.String(), substr)
	})
	if !ok {
		t.Fatalf("expected the terminal output to contain %q within %v, got %q", substr, waitTimeout, o.String())
	}
}

// echoCommand is a shell command printing "hi-"+tok whose own text (echoed
// back by the terminal) does not contain that.
func echoCommand(tok string) string {
	return `echo "hi-"'` + tok + `'` + "\n"
}

func terminal(s *specs.Spec) { s.Process.Terminal = true }

func TestConsoleSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bundle := e.bundle(terminal, args("sh"))
	for _, mode := range []string{"create", "run -d"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := e.with(t)
			sock, recv := e.consoleSocket()
			id := e.newID()
			e.mustBerth(append(strings.Fields(mode), "--console-socket", sock, "-b", bundle, id)...)
			master := recv()
			out := readPty(master)
			if mode == "create" {
				e.mustBerth("start", id)
			}
			tok := token()
			if _, err := master.Write([]byte(echoCommand(tok))); err != nil {
				t.Fatalf("writing to the pty master: %v", err)
			}
			out.waitFor(t, "hi-"+tok, nil)
			if _, err := master.Write([]byte("exit\n")); err != nil {
				t.Fatalf("writing to the pty master: %v", err)
			}
			e.waitStatus(id, "stopped")
		})
	}
}

func TestTerminalWithoutConsoleSocketFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	r := e.berth("create", "-b", e.bundle(terminal, args("sh")), id)
	wantFail(t, r, "create of a terminal container without --console-socket")
	assertNoLeftovers(t, e.root, id)
}

// TestRunTerminalForeground runs a terminal container in the foreground on
// a real terminal: runc's `run` has no -t flag, process.terminal decides.
func TestRunTerminalForeground(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatalf("allocating a pty: %v", err)
	}
	defer master.Close()
	if err := master.Resize(console.WinSize{Height: 40, Width: 100}); err != nil {
		t.Fatalf("resizing the pty: %v", err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty slave: %v", err)
	}
	id := e.newID()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "--root", e.root, "run", "-b", e.bundle(terminal, args("sh")), id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s run: %v", e.bin, err)
	}
	slave.Close()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	out := readPty(master)
	send := func(s string) func() {
		return func() { _, _ = master.Write([]byte(s)) }
	}

	out.waitFor(t, "40 100", send("stty size\n"))

	if err := master.Resize(console.WinSize{Height: 50, Width: 120}); err != nil {
		t.Fatalf("resizing the pty: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGWINCH)
	out.waitFor(t, "50 120", send("stty size\n"))

	send("exit 5\n")()
	select {
	case err := <-waitErr:
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("waiting for run: %v", err)
		}
		if code != 5 {
			t.Errorf("run on a terminal: expected exit code 5 from `exit 5`, got %d (output %q)", code, out.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("run on a terminal did not exit after `exit 5` within %v, output %q", waitTimeout, out.String())
	}
}

func TestStdioPassthrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	r := e.berthOpts(runOpts{stdin: strings.NewReader("in\n")}, "run", "-b",
		e.bundle(shell("echo out; echo err >&2; cat")), id)
	wantCode(t, r, 0, "run without a terminal")
	if r.stdout != "out\nin\n" {
		t.Errorf("run without a terminal: expected stdout %q, got %q", "out\nin\n", r.stdout)
	}
	if r.stderr != "err\n" {
		t.Errorf("run without a terminal: expected stderr %q, got %q", "err\n", r.stderr)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	run := e.startBerth(runOpts{}, "run", "-b",
		e.bundle(shell(`trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done`)), id)
	e.waitStatus(id, "running")
	waitFileContains(t, run.outPath, "ready")
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM to run: %v", err)
	}
	wantCode(t, run.wait(), 42, "foreground run sent SIGTERM, container traps it with exit 42")
}
