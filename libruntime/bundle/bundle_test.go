package bundle

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validSpec returns a small configuration that passes every check, for
// cases to break one field at a time.
func validSpec() *specs.Spec {
	return &specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace},
			{Type: specs.MountNamespace},
			{Type: specs.UTSNamespace},
		}},
		Hostname: "box",
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// wantErr fails unless err is non-nil and its text contains every want.
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func intPtr(i int) *int { return &i }

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"empty file", "", []string{"config.json: empty configuration"}},
		{"only whitespace", " \n\t\r\n", []string{"config.json: empty configuration"}},
		{"null", "null", []string{"config.json: empty configuration"}},
		{"null with whitespace", "\n null \n", []string{"config.json: empty configuration"}},
		{
			"bad character",
			"{\n  \"ociVersion\": \"1.0.2\",\n  x\n}",
			[]string{"config.json: invalid JSON at line 3, column 3: invalid character 'x'"},
		},
		{
			"bad character on first line",
			`{"ociVersion": "1.0.2",, "root": {}}`,
			[]string{"config.json: invalid JSON at line 1, column 24: invalid character ','"},
		},
		{
			// Columns count characters, not bytes: é is two bytes.
			"column after multibyte character",
			`{"hostname": "é" x}`,
			[]string{"config.json: invalid JSON at line 1, column 18:"},
		},
		{
			"truncated",
			"{\n  \"ociVersion\": \"1.0.2\",\n",
			[]string{"config.json: invalid JSON at line 3, column 1: unexpected end of JSON input"},
		},
		{
			"trailing document",
			"{}\n{}",
			[]string{"config.json: invalid JSON at line 2, column 1: invalid character '{' after top-level value"},
		},
		{"top level array", `[]`, []string{"config.json: expected object, got array"}},
		{"top level string", `"config"`, []string{"config.json: expected object, got string"}},
		{"ociVersion number", `{"ociVersion": 1}`, []string{"config.json: ociVersion: expected string, got number"}},
		{"root string", `{"root": "rootfs"}`, []string{"config.json: root: expected object, got string"}},
		{
			"process.args string",
			`{"process": {"args": "sh"}}`,
			[]string{"config.json: process.args: expected array of string, got string"},
		},
		{
			"process.args element",
			`{"process": {"args": ["sh", 1]}}`,
			[]string{"config.json: process.args: expected string, got number"},
		},
		{
			"process.terminal string",
			`{"process": {"terminal": "yes"}}`,
			[]string{"config.json: process.terminal: expected boolean, got string"},
		},
		{
			"negative uid",
			`{"process": {"user": {"uid": -1}}}`,
			[]string{"config.json: process.user.uid: expected unsigned 32-bit integer, got number -1"},
		},
		{
			"fractional gid",
			`{"process": {"user": {"gid": 1.5}}}`,
			[]string{"config.json: process.user.gid: expected unsigned 32-bit integer, got number 1.5"},
		},
		{
			"hook timeout string",
			`{"hooks": {"poststop": [{"path": "/bin/true", "timeout": "5s"}]}}`,
			[]string{"config.json: hooks.poststop.timeout: expected ", "integer, got string"},
		},
		{
			"mount options string",
			`{"mounts": [{"destination": "/tmp", "options": "ro"}]}`,
			[]string{"config.json: mounts.options: expected array of string, got string"},
		},
		{
			"namespaces object",
			`{"linux": {"namespaces": {"type": "pid"}}}`,
			[]string{"config.json: linux.namespaces: expected array of object, got object"},
		},
		{
			"annotations array",
			`{"annotations": ["a=b"]}`,
			[]string{"config.json: annotations: expected object, got array"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Parse([]byte(tc.data), "config.json")
			wantErr(t, err, tc.want...)
			if spec != nil {
				t.Errorf("got a spec along with error %v", err)
			}
		})
	}
}

func TestParseValidationErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
		want   []string
	}{
		{
			"ociVersion missing",
			func(s *specs.Spec) { s.Version = "" },
			[]string{"config.json: ociVersion: required field missing"},
		},
		{
			"root missing",
			func(s *specs.Spec) { s.Root = nil },
			[]string{"config.json: root: required field missing"},
		},
		{
			"root.path empty",
			func(s *specs.Spec) { s.Root.Path = "" },
			[]string{"config.json: root.path: required field missing"},
		},
		{
			"process missing",
			func(s *specs.Spec) { s.Process = nil },
			[]string{"config.json: process: required field missing"},
		},
		{
			"process.args missing",
			func(s *specs.Spec) { s.Process.Args = nil },
			[]string{"config.json: process.args: must not be empty"},
		},
		{
			"process.args empty",
			func(s *specs.Spec) { s.Process.Args = []string{} },
			[]string{"config.json: process.args: must not be empty"},
		},
		{
			"process.args[0] empty",
			func(s *specs.Spec) { s.Process.Args = []string{"", "-c"} },
			[]string{"config.json: process.args[0]: must not be empty"},
		},
		{
			"process.cwd missing",
			func(s *specs.Spec) { s.Process.Cwd = "" },
			[]string{"config.json: process.cwd: required field missing"},
		},
		{
			"process.cwd relative",
			func(s *specs.Spec) { s.Process.Cwd = "tmp" },
			[]string{`config.json: process.cwd: "tmp" is not absolute`},
		},
		{
			"unknown rlimit",
			func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{
					{Type: "RLIMIT_NOFILE"}, {Type: "RLIMIT_CORE"}, {Type: "RLIMIT_FOO"},
				}
			},
			[]string{`config.json: process.rlimits[2].type: unknown rlimit "RLIMIT_FOO"`, "RLIMIT_NOFILE"},
		},
		{
			"rlimit soft above hard",
			func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: 2 << 30, Hard: 1 << 30}}
			},
			[]string{`config.json: process.rlimits[0]: RLIMIT_AS soft limit 2147483648 is above its hard limit 1073741824`},
		},
		{
			"lowercase rlimit",
			func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "nofile"}} },
			[]string{`config.json: process.rlimits[0].type: unknown rlimit "nofile"`},
		},
		{
			"unknown capability",
			func(s *specs.Spec) {
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_TEST"}}
			},
			[]string{`config.json: process.capabilities.bounding[1]: unknown capability "CAP_TEST"`},
		},
		{
			"capability without prefix",
			func(s *specs.Spec) {
				s.Process.Capabilities = &specs.LinuxCapabilities{Ambient: []string{"NET_ADMIN"}}
			},
			[]string{`config.json: process.capabilities.ambient[0]: unknown capability "NET_ADMIN"`},
		},
		{
			"hostname without uts namespace",
			func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:2] },
			[]string{"config.json: hostname: set, but the container shares the host's UTS namespace"},
		},
		{
			"hostname without linux section",
			func(s *specs.Spec) { s.Linux = nil },
			[]string{"config.json: hostname: set, but the container shares the host's UTS namespace"},
		},
		{
			"domainname without uts namespace",
			func(s *specs.Spec) {
				s.Hostname = ""
				s.Domainname = "example.org"
				s.Linux.Namespaces = s.Linux.Namespaces[:2]
			},
			[]string{"config.json: domainname: set, but the container shares the host's UTS namespace"},
		},
		{
			"unknown namespace",
			func(s *specs.Spec) { s.Linux.Namespaces[1].Type = "foo" },
			[]string{`config.json: linux.namespaces[1].type: unknown namespace type "foo"`, "network"},
		},
		{
			// A common slip: the spec spells it "network".
			"namespace net",
			func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "net" },
			[]string{`config.json: linux.namespaces[0].type: unknown namespace type "net"`},
		},
		{
			"namespace type missing",
			func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Path: "/proc/1/ns/net"})
			},
			[]string{"config.json: linux.namespaces[3].type: required field missing"},
		},
		{
			"duplicate namespace",
			func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"})
			},
			[]string{`config.json: linux.namespaces[3].type: duplicate namespace type "pid"`, "linux.namespaces[0]"},
		},
		{
			"hook path missing",
			func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/true"}, {}}} //nolint:staticcheck // Testing the deprecated list too.
			},
			[]string{"config.json: hooks.prestart[1].path: required field missing"},
		},
		{
			"createRuntime hook path relative",
			func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "hook"}}} },
			[]string{`config.json: hooks.createRuntime[0].path: "hook" is not absolute`},
		},
		{
			"createContainer hook path relative",
			func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "./hook"}}} },
			[]string{`config.json: hooks.createContainer[0].path: "./hook" is not absolute`},
		},
		{
			"startContainer hook path relative",
			func(s *specs.Spec) { s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "bin/hook"}}} },
			[]string{`config.json: hooks.startContainer[0].path: "bin/hook" is not absolute`},
		},
		{
			"poststart hook path relative",
			func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "hook"}}} },
			[]string{`config.json: hooks.poststart[0].path: "hook" is not absolute`},
		},
		{
			"hook timeout zero",
			func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/a", Timeout: intPtr(5)}, {Path: "/b", Timeout: intPtr(0)}}}
			},
			[]string{"config.json: hooks.poststop[1].timeout: must be greater than zero", "got 0"},
		},
		{
			"hook timeout negative",
			func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/a", Timeout: intPtr(-3)}}}
			},
			[]string{"config.json: hooks.createRuntime[0].timeout: must be greater than zero", "got -3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(s)
			spec, err := Parse(mustJSON(t, s), "config.json")
			wantErr(t, err, tc.want...)
			if spec != nil {
				t.Errorf("got a spec along with error %v", err)
			}
		})
	}
}

func TestParseOCIVersion(t *testing.T) {
	for _, v := range []string{
		"1.0.0", "1.2.1", "1.0.2-dev", "1.3.0+dev", "1.0.0-rc.1+build.5",
		"1.0.0-rc-1", "1.10.100", specs.Version,
	} {
		t.Run("accept "+v, func(t *testing.T) {
			s := validSpec()
			s.Version = v
			if _, err := Parse(mustJSON(t, s), "config.json"); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, v := range []string{"2.0.0", "0.1.0", "0.9.0", "10.0.0"} {
		t.Run("reject "+v, func(t *testing.T) {
			s := validSpec()
			s.Version = v
			_, err := Parse(mustJSON(t, s), "config.json")
			wantErr(t, err, `config.json: ociVersion "`+v+`": unsupported, berth runs configurations of version 1.x`)
		})
	}
	for _, v := range []string{
		"0.9", "1.0", "1", "abc", "v1.0.0", "1.0.0.0", "01.0.0", "1.00.0",
		"1.0.0-", "1.0.0+", "1.0.0-rc..1", "1.0.0-rc_1", " 1.0.0", "1.x.0",
		"99999999999999999999.0.0",
	} {
		t.Run("reject "+v, func(t *testing.T) {
			s := validSpec()
			s.Version = v
			_, err := Parse(mustJSON(t, s), "config.json")
			wantErr(t, err, `config.json: ociVersion "`+v+`": `, "version 1.x")
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
	}{
		{"minimal", func(*specs.Spec) {}},
		{"zero user", func(s *specs.Spec) { s.Process.User = specs.User{} }},
		// runc ignores consoleSize without a terminal, so berth does too.
		{"consoleSize without terminal", func(s *specs.Spec) {
			s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
		}},
		// runc only warns about relative destinations; see validateSpec.
		{"relative mount destination", func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "tmp", Type: "tmpfs", Source: "tmpfs"}}
		}},
		{"no hostname, no uts namespace", func(s *specs.Spec) {
			s.Hostname = ""
			s.Linux.Namespaces = s.Linux.Namespaces[:2]
		}},
		// Joining a UTS namespace by path also keeps the host's hostname
		// safe; runc accepts this.
		{"hostname with joined uts namespace", func(s *specs.Spec) {
			s.Linux.Namespaces[2].Path = "/proc/1/ns/uts"
		}},
		{"every namespace type", func(s *specs.Spec) {
			s.Linux.Namespaces = nil
			for _, typ := range namespaceTypes {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ})
			}
		}},
		{"every rlimit type, duplicates allowed", func(s *specs.Spec) {
			for _, typ := range append(rlimitTypes, "RLIMIT_NOFILE") {
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: typ, Hard: 1, Soft: 1})
			}
		}},
		// Parse does not look at the filesystem.
		{"hooks that don't exist", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{
				CreateRuntime: []specs.Hook{{Path: "/no/such/hook", Timeout: intPtr(1)}},
				Poststop:      []specs.Hook{{Path: "/no/such/hook"}},
			}
		}},
		{"relative root.path outside bundle", func(s *specs.Spec) { s.Root.Path = "../rootfs" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(s)
			got, err := Parse(mustJSON(t, s), "config.json")
			if err != nil {
				t.Fatal(err)
			}
			if got.Process.Args[0] != s.Process.Args[0] {
				t.Errorf("process.args[0] = %q, want %q", got.Process.Args[0], s.Process.Args[0])
			}
		})
	}
}

func TestParseIgnoresUnknownFields(t *testing.T) {
	data := `{
		"ociVersion": "1.0.2",
		"root": {"path": "rootfs", "x-vendor": true},
		"process": {"args": ["sh"], "cwd": "/", "x-priority": 3},
		"org.example.extension": {"anything": [1, 2, 3]}
	}`
	if _, err := Parse([]byte(data), "config.json"); err != nil {
		t.Fatal(err)
	}
}

// newBundle writes spec as dir/config.json, with an empty dir/rootfs.
func newBundle(t *testing.T, spec *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, mustJSON(t, spec))
	return dir
}

func writeConfig(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ConfigName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFile creates a file with the given mode in a new temporary directory
// and returns its path.
func writeFile(t *testing.T, name string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadExample(t *testing.T) {
	rootless := specconv.Example()
	specconv.ToRootless(rootless)

	for name, spec := range map[string]*specs.Spec{
		"example":  specconv.Example(),
		"rootless": rootless,
	} {
		t.Run(name, func(t *testing.T) {
			dir := newBundle(t, spec)
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.Dir != dir {
				t.Errorf("Dir = %q, want %q", b.Dir, dir)
			}
			if want := filepath.Join(dir, "rootfs"); b.Rootfs != want {
				t.Errorf("Rootfs = %q, want %q", b.Rootfs, want)
			}
			if b.Spec.Hostname != "runc" || b.Spec.Version != specs.Version {
				t.Errorf("Spec not decoded: hostname %q, ociVersion %q", b.Spec.Hostname, b.Spec.Version)
			}
		})
	}
}

func TestLoadRootfs(t *testing.T) {
	elsewhere := t.TempDir()
	tests := []struct {
		name string
		path func(dir string) string // root.path, given the bundle dir
		want func(dir string) string // expected Rootfs
	}{
		{
			"relative",
			func(string) string { return "rootfs" },
			func(dir string) string { return filepath.Join(dir, "rootfs") },
		},
		{
			"relative, unclean",
			func(string) string { return "./rootfs/../rootfs/" },
			func(dir string) string { return filepath.Join(dir, "rootfs") },
		},
		{
			"relative, outside the bundle",
			func(dir string) string { return filepath.Join("..", filepath.Base(dir), "rootfs") },
			func(dir string) string { return filepath.Join(dir, "rootfs") },
		},
		{
			"absolute",
			func(string) string { return elsewhere },
			func(string) string { return elsewhere },
		},
		{
			"absolute, unclean",
			func(string) string { return elsewhere + "//./" },
			func(string) string { return elsewhere },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newBundle(t, validSpec())
			s := validSpec()
			s.Root.Path = tc.path(dir)
			writeConfig(t, dir, mustJSON(t, s))

			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(dir); b.Rootfs != want {
				t.Errorf("Rootfs = %q, want %q", b.Rootfs, want)
			}
		})
	}
}

// Not parallel: it changes the working directory.
func TestLoadRelativeBundleDir(t *testing.T) {
	dir := newBundle(t, validSpec())
	parent := filepath.Dir(dir)
	name := filepath.Base(dir)

	tests := []struct {
		name string
		cwd  string
		arg  string
	}{
		{"name", parent, name},
		{"dot-slash name", parent, "./" + name},
		{"unclean", parent, name + "/../" + name + "/"},
		{"empty means cwd", dir, ""},
		{"dot", dir, "."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(tc.cwd)
			b, err := Load(tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			if b.Dir != dir {
				t.Errorf("Dir = %q, want %q", b.Dir, dir)
			}
			// root.path is resolved against the bundle, not the cwd.
			if want := filepath.Join(dir, "rootfs"); b.Rootfs != want {
				t.Errorf("Rootfs = %q, want %q", b.Rootfs, want)
			}
		})
	}
}

func TestLoadHooks(t *testing.T) {
	hook := writeFile(t, "hook", 0o755)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(hook, link); err != nil {
		t.Fatal(err)
	}

	s := validSpec()
	s.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{{Path: hook}}, //nolint:staticcheck // Testing the deprecated list too.
		CreateRuntime:   []specs.Hook{{Path: hook, Timeout: intPtr(10)}, {Path: link}},
		CreateContainer: []specs.Hook{{Path: hook}},
		// Resolved inside the container after its mounts are set up, so
		// it need not exist on the host or in the rootfs now.
		StartContainer: []specs.Hook{{Path: "/usr/bin/injected-by-a-mount"}},
		Poststart:      []specs.Hook{{Path: hook}},
		Poststop:       []specs.Hook{{Path: hook}},
	}
	if _, err := Load(newBundle(t, s)); err != nil {
		t.Fatal(err)
	}

	// When the container joins another mount namespace, createContainer
	// hooks resolve there, so they are not looked for on the host.
	s = validSpec()
	s.Linux.Namespaces[1].Path = "/proc/1/ns/mnt"
	s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/no/such/hook"}}}
	if _, err := Load(newBundle(t, s)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "hook")
	notExec := writeFile(t, "not-exec", 0o644)
	hookDir := t.TempDir()

	withHooks := func(h *specs.Hooks) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := validSpec()
			s.Hooks = h
			return newBundle(t, s)
		}
	}

	tests := []struct {
		name     string
		setup    func(t *testing.T) string // returns the bundle dir
		want     func(dir string) []string
		notExist bool // errors.Is(err, fs.ErrNotExist) must hold
	}{
		{
			name:     "bundle missing",
			setup:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			want:     func(dir string) []string { return []string{"bundle " + dir + ": no such directory"} },
			notExist: true,
		},
		{
			name:  "bundle is a file",
			setup: func(t *testing.T) string { return writeFile(t, "file", 0o644) },
			want:  func(dir string) []string { return []string{"bundle " + dir + ": not a directory"} },
		},
		{
			name:     "config missing",
			setup:    func(t *testing.T) string { return t.TempDir() },
			want:     func(dir string) []string { return []string{"bundle " + dir + ": config.json not found"} },
			notExist: true,
		},
		{
			name: "config is a directory",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				if err := os.Mkdir(filepath.Join(dir, ConfigName), 0o755); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: func(dir string) []string { return []string{"bundle " + dir + ": ", "is a directory"} },
		},
		{
			name: "invalid JSON",
			setup: func(t *testing.T) string {
				dir := newBundle(t, validSpec())
				writeConfig(t, dir, []byte("{\n\t\"ociVersion\": \"1.0.2\"\n\t\"root\": {}\n}"))
				return dir
			},
			want: func(dir string) []string {
				return []string{filepath.Join(dir, ConfigName) + ": invalid JSON at line 3, column 2: invalid character '\"'"}
			},
		},
		{
			name: "invalid field",
			setup: func(t *testing.T) string {
				s := validSpec()
				s.Process.Cwd = "work"
				return newBundle(t, s)
			},
			want: func(dir string) []string {
				return []string{filepath.Join(dir, ConfigName) + `: process.cwd: "work" is not absolute`}
			},
		},
		{
			name: "rootfs missing",
			setup: func(t *testing.T) string {
				dir := newBundle(t, validSpec())
				if err := os.Remove(filepath.Join(dir, "rootfs")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: func(dir string) []string {
				return []string{filepath.Join(dir, ConfigName) + ": root.path: " + filepath.Join(dir, "rootfs") + ": no such directory"}
			},
			notExist: true,
		},
		{
			name: "rootfs is a file",
			setup: func(t *testing.T) string {
				s := validSpec()
				s.Root.Path = "rootfs.tar"
				dir := newBundle(t, s)
				if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: func(dir string) []string {
				return []string{"root.path: " + filepath.Join(dir, "rootfs.tar") + ": not a directory"}
			},
		},
		{
			name:  "prestart hook missing",
			setup: withHooks(&specs.Hooks{Prestart: []specs.Hook{{Path: missing}}}), //nolint:staticcheck // Testing the deprecated list too.
			want: func(string) []string {
				return []string{"hooks.prestart[0].path: " + missing + ": no such file or directory"}
			},
			notExist: true,
		},
		{
			name:  "createRuntime hook not executable",
			setup: withHooks(&specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh"}, {Path: notExec}}}),
			want: func(string) []string {
				return []string{"hooks.createRuntime[1].path: " + notExec + ": not executable"}
			},
		},
		{
			// Runs before pivot_root, so it is resolved on the host.
			name:  "createContainer hook missing",
			setup: withHooks(&specs.Hooks{CreateContainer: []specs.Hook{{Path: missing}}}),
			want: func(string) []string {
				return []string{"hooks.createContainer[0].path: " + missing + ": no such file or directory"}
			},
			notExist: true,
		},
		{
			name:  "poststart hook is a directory",
			setup: withHooks(&specs.Hooks{Poststart: []specs.Hook{{Path: hookDir}}}),
			want: func(string) []string {
				return []string{"hooks.poststart[0].path: " + hookDir + ": not a regular file"}
			},
		},
		{
			name:  "poststop hook missing",
			setup: withHooks(&specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh"}, {Path: missing}}}),
			want: func(string) []string {
				return []string{"hooks.poststop[1].path: " + missing + ": no such file or directory"}
			},
			notExist: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			b, err := Load(dir)
			wantErr(t, err, tc.want(dir)...)
			if b != nil {
				t.Errorf("got a bundle along with error %v", err)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tc.notExist)
			}
		})
	}
}

func TestLoadProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(t *testing.T, data string) string {
		t.Helper()
		path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".json")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("valid", func(t *testing.T) {
		path := write(t, `{"args": ["ps", "aux"], "cwd": "/", "env": ["PATH=/bin"],
			"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "x-extension": 1}`)
		p, err := LoadProcess(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Args) != 2 || p.Args[1] != "aux" || p.Cwd != "/" {
			t.Errorf("decoded %+v", p)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope.json")
		_, err := LoadProcess(path)
		wantErr(t, err, path+": no such file or directory")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
	})

	// The process is the whole document, so fields are named bare.
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "empty process"},
		{"null", "null", "empty process"},
		{"bad JSON", "{\n\"args\": [\"sh\"],\n\"cwd\": /\n}", "invalid JSON at line 3, column 8"},
		{"args string", `{"args": "sh", "cwd": "/"}`, "args: expected array of string, got string"},
		{"args missing", `{"cwd": "/"}`, "args: must not be empty"},
		{"cwd missing", `{"args": ["sh"]}`, "cwd: required field missing"},
		{"cwd relative", `{"args": ["sh"], "cwd": "home"}`, `cwd: "home" is not absolute`},
		{
			"unknown rlimit",
			`{"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]}`,
			`rlimits[0].type: unknown rlimit "RLIMIT_FOO"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.data)
			p, err := LoadProcess(path)
			wantErr(t, err, path+": "+tc.want)
			if strings.Contains(err.Error(), "process.") {
				t.Errorf("error %q names a process. field, but the file has no such level", err)
			}
			if p != nil {
				t.Errorf("got a process along with error %v", err)
			}
		})
	}
}

func TestValidateProcessField(t *testing.T) {
	tests := []struct {
		name  string
		p     *specs.Process
		field string
		want  string
	}{
		{"nil", nil, "process", "process: required field missing"},
		{"nil, no field", nil, "", "process: required field missing"},
		{"nested prefix", &specs.Process{Cwd: "/"}, "spec.process", "spec.process.args: must not be empty"},
		{"no prefix", &specs.Process{Args: []string{"sh"}}, "", "cwd: required field missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateProcess(tc.p, tc.field)
			wantErr(t, err, tc.want)
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q does not start with %q", err, tc.want)
			}
		})
	}

	if err := ValidateProcess(&specs.Process{Args: []string{"sh"}, Cwd: "/"}, "process"); err != nil {
		t.Errorf("valid process: %v", err)
	}
}
