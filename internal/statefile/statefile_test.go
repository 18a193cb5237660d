package statefile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeTempEnv makes the test binary a writer that dies between writing
// its temporary file and renaming it (see TestMain).
const writeTempEnv = "STATEFILE_TEST_WRITE_TEMP_IN"

// TestMain runs the test binary as such a writer when writeTempEnv names a
// directory: it leaves one temporary file there, named as every writer
// names them, and exits.
func TestMain(m *testing.M) {
	if dir := os.Getenv(writeTempEnv); dir != "" {
		if _, err := WriteTemp(dir, "{}"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// deadWritersTemp runs a writer in a child process that exits after
// WriteTemp, and returns the name of the file it left in dir.
func deadWritersTemp(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), writeTempEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the writer process: %v: %s", err, out)
	}
	prefix := "new-" + strconv.Itoa(cmd.Process.Pid) + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			return e.Name()
		}
	}
	t.Fatalf("the writer (pid %d) left no file %s* in %s: %v", cmd.Process.Pid, prefix, dir, entries)
	return ""
}

// TestRemoveDebris checks that the sweep removes, and reports, the
// temporary file of a writer that died before renaming it, and keeps a
// live writer's and every file not shaped like a temporary file, among
// them a record whose container id looks like one.
func TestRemoveDebris(t *testing.T) {
	dir := t.TempDir()
	dead := deadWritersTemp(t, dir)
	live, err := WriteTemp(dir, "{}")
	if err != nil {
		t.Fatal(err)
	}
	deadPid := strings.Split(dead, "-")[1]
	keep := []string{filepath.Base(live), "ctr.json", "new-notapid", "new--1-2", "new-0-2", "new-" + deadPid + "-x.json"}
	for _, name := range keep[1:] {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := RemoveDebris(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, dead)}; !slices.Equal(removed, want) {
		t.Errorf("RemoveDebris removed %v, want %v (its writer, pid %s, is dead)", removed, want, deadPid)
	}
	if _, err := os.Stat(filepath.Join(dir, dead)); err == nil {
		t.Errorf("RemoveDebris reported %s removed, it is still there", dead)
	}
	for _, name := range keep {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("RemoveDebris removed %s, which is not a dead writer's temporary file: %v", name, err)
		}
	}
	if got, err := RemoveDebris(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("RemoveDebris of a missing dir = %v, %v; want nothing, nil", got, err)
	}
}

// TestClearTempDir checks that a lock holder's sweep of a tmpDir removes
// everything in it, whoever wrote it: its writers all hold that lock.
func TestClearTempDir(t *testing.T) {
	dir := t.TempDir()
	deadWritersTemp(t, dir)
	if _, err := WriteTemp(dir, "{}"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ClearTempDir(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("ClearTempDir left %v", left)
	}
}

// TestReplace checks that Replace creates and then replaces the file,
// leaving no temporary file behind.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, content := range []string{"old\n", "new\n"} {
		if err := Replace(dir, path, content); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Errorf("after Replace with %q: read %q, %v", content, got, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("after Replace: expected only the file in %s, got %v", dir, entries)
	}
}
