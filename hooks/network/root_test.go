package network

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/statefile"
)

// TestSaveJSON checks that a record is written whole into a directory
// that does not exist yet, reads back, and leaves no temporary file.
func TestSaveJSON(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	want := &Record{ID: "ctr", Mode: "none"}
	if err := l.saveRecord(want); err != nil {
		t.Fatal(err)
	}
	got, err := l.LoadRecord("ctr")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("LoadRecord after saveRecord = %+v, %v; want %+v", got, err, want)
	}
	if entries, _ := os.ReadDir(l.recordsDir()); len(entries) != 1 {
		t.Errorf("after saveRecord: expected only ctr.json in %s, got %v", l.recordsDir(), entries)
	}
}

// TestRemoveDebris checks that gc's sweep of the records directory removes,
// and reports, the temporary file of a writer that died between writing
// and renaming it, and nothing else: not a live writer's, not a record.
func TestRemoveDebris(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	if err := l.saveRecord(&Record{ID: "ctr", Mode: "none"}); err != nil {
		t.Fatal(err)
	}
	dir := l.recordsDir()
	live, err := statefile.WriteTemp(dir, "{}")
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadFile := filepath.Join(dir, "new-"+strconv.Itoa(dead.Process.Pid)+"-123") // as statefile.WriteTemp names it
	if err := os.WriteFile(deadFile, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	removed, err := statefile.RemoveDebris(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{deadFile}) {
		t.Errorf("removeDebris removed %v, want only %s (the writer %d is dead)", removed, deadFile, dead.Process.Pid)
	}
	for _, p := range []string{live, l.recordFile("ctr")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("removeDebris removed %s, which is not a dead writer's: %v", p, err)
		}
	}
	if got, err := statefile.RemoveDebris(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("removeDebris of a missing dir = %v, %v; want nothing, nil", got, err)
	}
}

// TestErrorKinds checks that berth-net's errors carry the kind callers
// match (errdefs), not only words: defining a network twice, using or
// removing one that does not exist, removing one that a container uses.
func TestErrorKinds(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	if _, err := l.LoadNetwork("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("LoadNetwork(nosuch) = %v, want errdefs.ErrNotFound", err)
	}
	if err := l.RemoveNetwork("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("RemoveNetwork(nosuch) = %v, want errdefs.ErrNotFound", err)
	}
	// A subnet from the documentation range, with no bridge made: defining
	// a network writes only files under the root.
	o := CreateOptions{Name: "kinds", Subnet: "198.51.100.0/24", Bridge: "btkinds0"}
	if _, err := l.CreateNetwork(o); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateNetwork(o); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("CreateNetwork twice = %v, want errdefs.ErrAlreadyExists", err)
	}
	if err := l.saveRecord(&Record{ID: "c1", Mode: "bridge", Network: "kinds"}); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveNetwork("kinds"); !errors.Is(err, errdefs.ErrInUse) {
		t.Errorf("RemoveNetwork of a network with a container = %v, want errdefs.ErrInUse", err)
	}
}
