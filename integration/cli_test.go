package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := runCmd(t, runOpts{}, e.bin, "--version")
	wantCode(t, r, 0, "--version")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	hasVersion := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "berth version ") })
	if !hasVersion {
		t.Errorf("--version: expected a line starting with %q, got %q", "berth version ", r.stdout)
	}
	hasSpec := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "spec: ") })
	if !hasSpec {
		t.Errorf("--version: expected a line starting with %q, got %q", "spec: ", r.stdout)
	}
}

// jsonLogLines parses a --log-format json log: every non-empty line must be
// a JSON object.
func jsonLogLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("expected the log file %s to exist: %v", path, err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("log line is not a JSON object: %q: %v", l, err)
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logFile := filepath.Join(e.mkdir("log"), "log.json")
	missing := randomID("nosuch-")
	r := e.berth("--log", logFile, "--log-format", "json", "state", missing)
	wantCode(t, r, 1, "state of a missing container with a JSON log")
	lines := jsonLogLines(t, logFile)
	found := false
	for _, m := range lines {
		_, hasLevel := m["level"]
		_, hasMsg := m["msg"]
		if !hasLevel || !hasMsg {
			t.Errorf("JSON log line without level and msg keys: %v", m)
		}
		msg, _ := m["msg"].(string)
		if m["level"] == "error" && strings.Contains(msg, missing) {
			found = true
		}
	}
	if !found {
		t.Errorf("expected a JSON log line with level \"error\" and a msg naming %s, got %v", missing, lines)
	}
}

func TestLogFormatText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logFile := filepath.Join(e.mkdir("log"), "log.txt")
	missing := randomID("nosuch-")
	r := e.berth("--log", logFile, "kill", missing, "KILL")
	wantCode(t, r, 1, "kill of a missing container with a text log")
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("expected the log file to exist: %v", err)
	}
	if !strings.Contains(string(data), "level=error") || !strings.Contains(string(data), "msg=") {
		t.Errorf("expected the text log to have a level=error line with a msg, got %q", data)
	}
	// runc writes the error to stderr as well when logging to a file.
	if strings.TrimSpace(r.stderr) == "" {
		t.Errorf("kill of a missing container with --log: expected the error on stderr too, got none")
	}
}

func TestDebugLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logFile := filepath.Join(e.mkdir("log"), "debug.log")
	id := e.newID()
	r := e.berth("--debug", "--log", logFile, "run", "-b", e.bundle(args("true")), id)
	wantCode(t, r, 0, "run with --debug")
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "level=debug") {
		t.Errorf("--debug: expected level=debug lines in the log, got %q", data)
	}
}

func TestSystemdCgroupWithoutSystemd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is running on this host; the test expects a host without it")
	}
	id := e.newID()
	r := e.berth("--systemd-cgroup", "create", "-b", e.bundle(), id)
	wantFail(t, r, "create --systemd-cgroup on a host without systemd")
	if !containsFold(r.stderr, "systemd") {
		t.Errorf("expected the error to mention systemd, got %s", r)
	}
	assertNoLeftovers(t, e.root, id)
}

func TestSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	dir := e.mkdir("spec")
	e.mustBerth("spec", "-b", dir)
	var s specs.Spec
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatalf("spec -b: expected config.json in %s: %v", dir, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("spec: config.json does not parse: %v", err)
	}
	if s.Version == "" || s.Process == nil || len(s.Process.Args) == 0 || s.Root == nil || s.Root.Path != "rootfs" {
		t.Errorf("spec: expected ociVersion, process.args and root.path \"rootfs\", got %s", data)
	}
	if hasNamespace(&s, specs.UserNamespace) {
		t.Errorf("spec without --rootless: expected no user namespace, got %v", s.Linux.Namespaces)
	}

	r := e.berth("spec", "-b", dir)
	wantFail(t, r, "spec when config.json already exists")
	if !containsFold(r.stderr, "exist") && !strings.Contains(r.stderr, "config.json") {
		t.Errorf("expected the error to say config.json exists, got %s", r)
	}

	// Without -b, spec writes into the current directory.
	cwd := e.mkdir("spec-cwd")
	r = e.berthOpts(runOpts{dir: cwd}, "spec")
	wantCode(t, r, 0, "spec in the current directory")
	if _, err := os.Stat(filepath.Join(cwd, "config.json")); err != nil {
		t.Errorf("spec without -b: expected config.json in the current directory: %v", err)
	}

	rl := e.mkdir("spec-rootless")
	e.mustBerth("spec", "--rootless", "-b", rl)
	var rs specs.Spec
	data, _ = os.ReadFile(filepath.Join(rl, "config.json"))
	if err := json.Unmarshal(data, &rs); err != nil {
		t.Fatalf("spec --rootless: config.json does not parse: %v", err)
	}
	if !hasNamespace(&rs, specs.UserNamespace) {
		t.Errorf("spec --rootless: expected a user namespace, got %s", data)
	}
	if rs.Linux == nil || len(rs.Linux.UIDMappings) == 0 {
		t.Errorf("spec --rootless: expected uidMappings, got %s", data)
	}
}

func hasNamespace(s *specs.Spec, ns specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == ns })
}

func TestFeatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.mustBerth("features")
	var f struct {
		OCIVersionMin string   `json:"ociVersionMin"`
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		MountOptions  []string `json:"mountOptions"`
		Linux         *struct {
			Namespaces   []string        `json:"namespaces"`
			Capabilities []string        `json:"capabilities"`
			Cgroup       json.RawMessage `json:"cgroup"`
			Seccomp      *struct {
				Enabled *bool `json:"enabled"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("features: expected JSON, got %v\n%s", err, r)
	}
	if f.OCIVersionMin == "" || f.OCIVersionMax == "" {
		t.Errorf("features: expected ociVersionMin and ociVersionMax, got %q and %q", f.OCIVersionMin, f.OCIVersionMax)
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !slices.Contains(f.Hooks, h) {
			t.Errorf("features: expected hook %q in hooks %v", h, f.Hooks)
		}
	}
	if !slices.Contains(f.MountOptions, "ro") || !slices.Contains(f.MountOptions, "bind") {
		t.Errorf("features: expected mountOptions to include ro and bind, got %v", f.MountOptions)
	}
	if f.Linux == nil {
		t.Fatalf("features: expected a linux object, got %s", r.stdout)
	}
	for _, ns := range []string{"pid", "network", "ipc", "uts", "mount", "user", "cgroup"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("features: expected namespace %q in %v", ns, f.Linux.Namespaces)
		}
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_KILL", "CAP_NET_BIND_SERVICE"} {
		if !slices.Contains(f.Linux.Capabilities, c) {
			t.Errorf("features: expected capability %q in %v", c, f.Linux.Capabilities)
		}
	}
	if len(f.Linux.Cgroup) == 0 || string(f.Linux.Cgroup) == "null" {
		t.Errorf("features: expected linux.cgroup, got none")
	}
	if f.Linux.Seccomp == nil || f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		t.Errorf("features: expected linux.seccomp.enabled true, got %s", r.stdout)
	}
}
