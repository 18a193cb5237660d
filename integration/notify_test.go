package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/testenv"
)

// notifyListener collects sd_notify datagrams sent to a unixgram socket,
// closing any fds passed with them (the BARRIER=1 protocol waits for that).
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func (e *env) notifyListener() *notifyListener {
	e.t.Helper()
	l := &notifyListener{path: filepath.Join(e.mkdir("notify"), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: l.path, Net: "unixgram"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(cmdTimeout))
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(16*4))
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					fds, _ := unix.ParseUnixRights(&m)
					for _, fd := range fds {
						unix.Close(fd)
					}
				}
			}
			l.mu.Lock()
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					l.msgs = append(l.msgs, line)
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *notifyListener) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

func (l *notifyListener) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, " | ")
}

func TestNotifySocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "no go toolchain in PATH to build the sd_notify helper (testdata/sdnotify) for the container")
	}
	rootfs := e.privateRootfs()
	build := exec.Command(goBin, "build", "-o", filepath.Join(rootfs, "sdnotify"), "./testdata/sdnotify")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/sdnotify: %v\n%s", err, out)
	}
	l := e.notifyListener()
	bundle := e.bundle(func(s *specs.Spec) {
		s.Root = &specs.Root{Path: rootfs, Readonly: false}
		s.Process.Args = []string{"/sdnotify"}
	})
	id := e.newID()
	r := e.berthOpts(runOpts{env: []string{"NOTIFY_SOCKET=" + l.path}}, "run", "-d", "-b", bundle, id)
	wantCode(t, r, 0, "run -d with NOTIFY_SOCKET")
	st := e.state(id)
	mainPid := "MAINPID=" + strconv.Itoa(st.Pid)
	if !poll(func() bool { return l.has("READY=1") && l.has(mainPid) }) {
		t.Errorf("NOTIFY_SOCKET: expected READY=1 and %s (the init's host pid) on the host socket, got %q", mainPid, l.String())
	}
}
