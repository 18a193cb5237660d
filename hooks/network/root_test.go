package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRemoveDebris checks that gc's sweep removes the temporary file of a
// writer that died between writing and renaming it, and nothing else: not
// a live writer's, not a record, not a file it does not recognise.
func TestRemoveDebris(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadFile := "new-" + strconv.Itoa(dead.Process.Pid) + "-123"
	keep := []string{"new-" + strconv.Itoa(os.Getpid()) + "-456", "ctr.json", "new-notapid", "new--1-x"}
	for _, name := range append(keep, deadFile) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := removeDebris(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != filepath.Join(dir, deadFile) {
		t.Errorf("removeDebris removed %v, want only %s (the writer %d is dead)", removed, deadFile, dead.Process.Pid)
	}
	for _, name := range keep {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("removeDebris removed %s, which is not a dead writer's: %v", name, err)
		}
	}
	if got, err := removeDebris(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("removeDebris of a missing dir = %v, %v; want nothing, nil", got, err)
	}
}
