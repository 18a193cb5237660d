package integration

// Hostile input: names that would escape the state directories, state
// file permissions, symlinks in a rootfs that point at the host, and no
// shell between berth and a user's strings.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// victim is a directory beside the test's state roots, holding a file, and
// a JSON file named like a definition berth-net could be tricked into
// reading: the names of the tests below aim at them.
type victim struct {
	dir, file, json string
}

func (h *netHost) newVictim(name string) victim {
	h.t.Helper()
	v := victim{dir: filepath.Join(h.base, name), file: filepath.Join(h.base, name, "keep"), json: filepath.Join(h.base, name+".json")}
	if err := os.Mkdir(v.dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(v.file, []byte("keep\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	// A valid network definition, so that a path built from the name gets
	// as far as possible if the name is not refused first.
	def := `{"name":"ok","bridge":"bt-v` + h.sfx[:6] + `","subnet":"10.77.0.0/24","gateway":"10.77.0.1","firewall":"nftables"}`
	if err := os.WriteFile(v.json, []byte(def), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (v victim) assertIntact(t *testing.T, what string) {
	t.Helper()
	for _, p := range []string{v.dir, v.file, v.json} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %s, outside the state directories, was removed: %v", what, p, err)
		}
	}
	if ents, _ := os.ReadDir(v.dir); len(ents) != 1 {
		t.Errorf("%s: expected %s to hold only its file, it has %d entries", what, v.dir, len(ents))
	}
}

// TestHostileContainerIDs passes container ids that would leave the state
// root to every berth command that takes one, and to berth-net's setup and
// teardown on stdin (where NUL, which no argv can carry, is possible too):
// each is refused and nothing outside the roots is touched.
func TestHostileContainerIDs(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	v := h.newVictim("victim")
	// root is BASE/root and BERTH_NET_ROOT is BASE/net: ../victim and
	// ../../victim reach the victim from the state dir and the records dir.
	ids := map[string]string{
		"parent":      "../victim",
		"grandparent": "../../victim",
		"absolute":    v.dir,
		"slash":       "a/b",
		"dot":         ".",
		"dotdot":      "..",
		"over-long":   strings.Repeat("c", 1025),
		// Longer than a file name may be (255 bytes, berth's limit).
		"over-name-max": strings.Repeat("c", 300),
		"space":         "a b",
	}
	bundle := h.bundle(netCtr{spec: []string{"--network", "none"}})
	for name, id := range ids {
		t.Run(name, func(t *testing.T) {
			h := h.withT(t)
			for _, cmd := range [][]string{
				{"create", "-b", bundle, id}, {"run", "-d", "-b", bundle, id}, {"start", id}, {"state", id},
				{"kill", id, "KILL"}, {"pause", id}, {"resume", id}, {"exec", id, "true"}, {"ps", id},
				{"delete", id}, {"delete", "-f", id},
			} {
				r := h.berth(cmd...)
				if r.code == 0 {
					t.Errorf("berth %s with container id %.40q: expected a refusal, got %s", cmd[0], id, r)
				} else if !strings.Contains(r.stderr, "container id") && !strings.Contains(r.stderr, "argument") &&
					!(len(id) > 255 && (strings.Contains(r.stderr, "file name too long") || strings.Contains(r.stderr, "does not exist"))) {
					t.Errorf("berth %s with container id %.40q: expected the error to say the container id is invalid, got %s", cmd[0], id, r)
				}
			}
			if ents, _ := os.ReadDir(h.root); len(ents) != 0 {
				t.Errorf("container id %.40q: expected the state root to stay empty, it has %d entries", id, len(ents))
			}
			v.assertIntact(t, fmt.Sprintf("berth commands with container id %.40q", id))
		})
	}
	stdinIDs := map[string]string{"nul": "a\x00b", "traversal": "../../victim", "absolute": v.dir, "empty": ""}
	for name, id := range stdinIDs {
		t.Run("berth-net "+name, func(t *testing.T) {
			h := h.withT(t)
			state, err := json.Marshal(specs.State{Version: "1.2.0", ID: id, Status: "creating", Pid: 1, Bundle: bundle})
			if err != nil {
				t.Fatal(err)
			}
			for _, sub := range [][]string{{"setup", "--network", "none"}, {"teardown"}} {
				r := runCmd(t, runOpts{env: h.environ, stdin: bytes.NewReader(state)}, "nsenter",
					append([]string{"--net=" + h.nsPath(), h.netBin()}, sub...)...)
				if r.code == 0 || !strings.Contains(r.stderr, "id") {
					t.Errorf("berth-net %s with container id %q on stdin: expected a refusal naming the id, got %s", sub[0], id, r)
				}
			}
			v.assertIntact(t, fmt.Sprintf("berth-net with container id %q", id))
		})
	}
	// NUL cannot reach berth through argv at all: execve takes C strings.
	// Show it, so that this test notices if that ever changes.
	if r := h.berth("state", "a\x00b"); r.code != -1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("berth state with a NUL in its argument: expected the exec itself to fail (EINVAL), got %s", r)
	}
}

// TestHostileNetworkNames passes network names that would leave
// BERTH_NET_ROOT's directories, or that the firewall cannot take, to
// `berth network create|inspect|rm` and to `berth spec --network`.
func TestHostileNetworkNames(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	v := h.newVictim("victim")
	// BERTH_NET_ROOT is BASE/net, definitions are in BASE/net/networks and
	// leases in BASE/net/ipam/NAME: ../../victim names BASE/victim.json and
	// BASE/victim from there.
	names := []string{"../../victim", "../x", v.dir, "a/b", ".", "..", strings.Repeat("n", 65), "_x", "-x", ".hidden", "a b", "a:b"}
	for _, name := range names {
		for _, cmd := range [][]string{{"network", "create", name}, {"network", "inspect", name}, {"network", "rm", name}} {
			r := h.berth(cmd...)
			if r.code == 0 {
				t.Errorf("berth %s with network name %.40q: expected a refusal, got %s", strings.Join(cmd[:2], " "), name, r)
			}
		}
		// berth spec does not check network names (berth-net does, in the
		// container's setup hook): a container on such a network must fail
		// to start, touching nothing.
		dir := h.mkdir("spec")
		if r := h.berth("spec", "-b", dir, "--network", "bridge:"+name); r.code == 0 {
			data, err := os.ReadFile(filepath.Join(dir, "config.json"))
			var s specs.Spec
			if err == nil {
				err = json.Unmarshal(data, &s)
			}
			if err != nil {
				t.Fatalf("berth spec wrote no config: %v", err)
			}
			s.Root = &specs.Root{Path: h.rootfsWith(nil), Readonly: true}
			s.Process.Terminal, s.Process.Args = false, []string{"true"}
			h.writeConfig(dir, &s)
			id := h.newID()
			if r := h.berth("run", "-d", "-b", dir, id); r.code == 0 || !strings.Contains(r.stderr, "network") {
				t.Errorf("run -d of a container on network %.40q: expected its setup hook to refuse the name, got %s", name, r)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(h.netRoot, "networks")); len(ents) != 0 {
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		t.Errorf("expected no network defined after hostile names only, BERTH_NET_ROOT/networks has %v", got)
	}
	v.assertIntact(t, "hostile network names")
	if names := h.lsNames(); len(names) != 1 || names[0] != "bridge" {
		t.Errorf("network ls after hostile names only: expected the default network bridge alone, got %v", names)
	}
}

// TestStateFileModes checks that what berth and berth-net keep on disk is
// root's alone: the state roots are 0700 and every state file in them is
// 0600, owned by root.
func TestStateFileModes(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	// Let berth make its root itself, with the mode it chooses.
	if err := os.Remove(h.root); err != nil {
		t.Fatal(err)
	}
	id := h.start(netCtr{spec: []string{"--network", "bridge", "--publish", "8711:80"}})
	created := h.newID()
	h.mustBerth("create", "-b", h.bundle(netCtr{spec: []string{"--network", "bridge"}}), created)

	var files, dirs int
	for _, root := range []string{h.root, h.netRoot} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walking %s: %v", root, err)
				return nil
			}
			info, err := os.Lstat(p)
			if err != nil {
				return nil // removed meanwhile
			}
			st := info.Sys().(*syscall.Stat_t)
			mode := info.Mode()
			if st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: owned by %d:%d, expected root", p, st.Uid, st.Gid)
			}
			switch {
			case p == root:
				dirs++
				if mode.Perm() != 0o700 {
					t.Errorf("state root %s: mode %v, expected 0700", p, mode.Perm())
				}
			case mode.IsDir():
				dirs++
				// libcontainer makes each container's state dir 0711, as
				// runc does, so that a container's init under another uid
				// can reach its exec.fifo; the root above it is 0700, so no
				// other user gets that far. Nothing may be listable or
				// writable by others.
				if mode.Perm()&0o066 != 0 {
					t.Errorf("state dir %s: mode %v, expected no read or write for group and others", p, mode.Perm())
				}
			case mode&fs.ModeNamedPipe != 0 && d.Name() == "exec.fifo":
				// runc's exec fifo (0622) lives until start; the init opens it.
			case mode.IsRegular():
				files++
				if mode.Perm() != 0o600 {
					t.Errorf("state file %s: mode %v, expected 0600", p, mode.Perm())
				}
			default:
				t.Errorf("%s: unexpected file type %v in the state", p, mode.Type())
			}
			return nil
		})
	}
	if files < 8 {
		t.Errorf("expected at least the containers' state, hooks, records, leases and port reservations (8 files), found %d", files)
	}
	t.Logf("checked %d state files and %d directories of %s and %s", files, dirs, id, created)
}

// TestSymlinkEscape gives berth a rootfs whose /etc/hosts, /etc/hostname
// and /etc/resolv.conf (which berth-net writes) and whose mount points
// are symlinks to files and directories of the host: nothing outside the
// rootfs may be written or mounted over.
func TestSymlinkEscape(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	hostDir := h.mkdir("hostside")
	hostFile := func(name string) string {
		p := filepath.Join(hostDir, name)
		if err := os.WriteFile(p, []byte("host's own "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hosts, hostname, resolv := hostFile("hosts"), hostFile("hostname"), hostFile("resolv")
	mountDir := filepath.Join(hostDir, "mnt")
	if err := os.Mkdir(mountDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Mount points that do not exist yet: libcontainer makes them, and must
	// make them inside the rootfs, not at the host path the symlink names.
	newDir, newFile := filepath.Join(hostDir, "newdir"), filepath.Join(hostDir, "newfile")
	source := h.writeFile("motd-source", "the container's motd\n")

	rootfs := h.rootfsWith(nil)
	links := map[string]string{
		"etc/hosts":       hosts,                                                         // absolute
		"etc/hostname":    strings.Repeat("../", 12) + strings.TrimPrefix(hostname, "/"), // up and out
		"etc/resolv.conf": resolv,
		"etc/motd":        newFile,  // a file bind mount's destination
		"mnt/esc":         mountDir, // a tmpfs mount's destination
		"mnt/new":         newDir,   // another one's
	}
	for name, target := range links {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(p) // the busybox rootfs may have the file (hardlinked: remove, never write)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotDir(t, hostDir)

	bundle := h.bundle(netCtr{spec: []string{"--network", "bridge", "--hostname", "esc-" + h.sfx[:4]}, mods: []func(*specs.Spec){
		func(s *specs.Spec) {
			s.Root.Path = rootfs
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/esc", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: "/mnt/new", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: "/etc/motd", Type: "bind", Source: source, Options: []string{"bind", "ro"}})
		}}})
	id := h.newID()
	r := h.berth("run", "-d", "-b", bundle, id)
	if r.code == 0 {
		// Inside, the files are berth-net's and the mounts are where the
		// container sees them; a write to the tmpfs stays in it.
		wantContains(t, h.mustExec(id, "cat", "/etc/hosts").stdout, "esc-"+h.sfx[:4], "the container's /etc/hosts")
		wantContains(t, h.mustExec(id, "cat", "/etc/hostname").stdout, "esc-"+h.sfx[:4], "the container's /etc/hostname")
		wantContains(t, h.mustExec(id, "cat", "/etc/motd").stdout, "the container's motd", "the bind mount at /etc/motd")
		h.mustExec(id, "sh", "-c", "echo escaped > /mnt/esc/pwned && echo escaped > /mnt/new/pwned")
	} else {
		t.Logf("run -d refused the rootfs (acceptable, as long as nothing escaped): %s", r)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), hostDir) {
		t.Errorf("a mount landed on the host side of a symlink, under %s:\n%s", hostDir, mi)
	}
	if after := snapshotDir(t, hostDir); after != before {
		t.Errorf("the host files the rootfs's symlinks point at changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	h.mustBerth("delete", "-f", id)
	if after := snapshotDir(t, hostDir); after != before {
		t.Errorf("after delete, the host files the rootfs's symlinks point at changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// /etc itself a symlink to a host directory: berth-net resolves it
	// inside the rootfs, where it leads nowhere, and must write nothing.
	rootfs2 := h.rootfsWith(nil)
	etcDir := h.mkdir("hostetc")
	if err := os.RemoveAll(filepath.Join(rootfs2, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(etcDir, filepath.Join(rootfs2, "etc")); err != nil {
		t.Fatal(err)
	}
	bundle2 := h.bundle(netCtr{spec: []string{"--network", "bridge"}, mods: []func(*specs.Spec){func(s *specs.Spec) { s.Root.Path = rootfs2 }}})
	id2 := h.newID()
	if r := h.berth("run", "-d", "-b", bundle2, id2); r.code != 0 {
		t.Logf("rootfs whose /etc is a symlink to the host: run -d refused it: %s", strings.TrimSpace(r.stderr))
	}
	if ents, _ := os.ReadDir(etcDir); len(ents) != 0 {
		t.Errorf("rootfs whose /etc is a symlink to host dir %s: berth wrote %d entries there", etcDir, len(ents))
	}
	h.mustBerth("delete", "-f", id2)
}

// snapshotDir describes every entry under dir: path, type, mode, content.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %v", p, info.Mode())
		if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// TestNoShell checks that berth and berth-net never start a shell: every
// exec in their source runs a program directly, so no user-supplied string
// (id, network name, hook argument, ps option) is ever parsed by sh.
func TestNoShell(t *testing.T) {
	t.Parallel()
	shells := map[string]bool{"sh": true, "bash": true, "/bin/sh": true, "/bin/bash": true, "/usr/bin/sh": true, "/usr/bin/env": true}
	fset := gotoken.NewFileSet()
	var checked, execs int
	for _, dir := range []string{"../cmd", "../hooks", "../libruntime", "../internal"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				var prog ast.Expr
				switch sel.Sel.Name {
				case "Command", "Exec", "StartProcess", "ForkExec":
					if len(call.Args) > 0 {
						prog = call.Args[0]
					}
				case "CommandContext":
					if len(call.Args) > 1 {
						prog = call.Args[1]
					}
				default:
					return true
				}
				execs++
				if lit, ok := prog.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
					if s, _ := strconv.Unquote(lit.Value); shells[s] {
						t.Errorf("%s: runs a shell (%s): user-supplied strings must never reach one", fset.Position(call.Pos()), s)
					}
				}
				for _, a := range call.Args {
					if lit, ok := a.(*ast.BasicLit); ok && lit.Value == `"-c"` {
						t.Errorf("%s: passes -c to the program it runs, as to a shell", fset.Position(call.Pos()))
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatalf("reading %s: %v", dir, err)
		}
	}
	if checked < 20 || execs == 0 {
		t.Fatalf("expected to read berth's sources from the module root (found %d files, %d exec calls)", checked, execs)
	}
	t.Logf("%d source files, %d exec calls: none runs a shell", checked, execs)
}

// TestUnusualValidIDs runs bridge containers whose ids are valid for runc
// and berth but unusual: with a '+', beginning with '.', and of the longest
// length, 255 bytes (its network record cannot be ID.json). Each gets its
// network and published port, network rm and gc see it, and delete leaves
// nothing.
func TestUnusualValidIDs(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	netName := "od" + h.sfx[:4]
	h.createNetwork(netName)
	h.helper()
	longest := "bt-" + h.sfx + "-" + strings.Repeat("x", 255-len("bt-"+h.sfx+"-"))
	for i, id := range []string{"bt+" + h.sfx, ".bt-" + h.sfx, longest} {
		t.Run(fmt.Sprintf("%.24s(%d bytes)", id, len(id)), func(t *testing.T) {
			h := h.withT(t)
			h.trackID(id)
			port := 8720 + i
			tok := token()
			bundle := h.bundle(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", strconv.Itoa(port) + ":80"}, args: webServer, files: webFiles(tok)})
			if r := h.berth("run", "-d", "-b", bundle, id); r.code != 0 {
				t.Fatalf("run -d with container id %q: %s", id, r)
			}
			wantTCP(t, h.otherSide(), hostAddr, port, tok, "container "+id+" through its published port")
			addr := h.addrOf(netName, id)
			if r := h.berthNet("network", "rm", netName); r.code == 0 || !strings.Contains(r.stderr, id) {
				t.Errorf("network rm with container %s attached: expected a refusal naming it, got %s", id, r)
			}
			if rep := h.gc(); slices.Contains(rep.Containers, id) {
				t.Errorf("gc released the running container %s: %+v", id, rep)
			}
			wantTCPNow(t, h.otherSide(), hostAddr, port, tok, "container "+id+" after gc")
			h.mustBerth("delete", "-f", id)
			for _, l := range h.crashLeftovers(id, addr, port) {
				t.Errorf("after delete -f %s: leftover %s", id, l)
			}
		})
	}
}
