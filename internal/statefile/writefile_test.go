package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "berth-hooks.json")
	for _, content := range []string{`{"a":1}`, `{"b":2}`} {
		if err := WriteFile(path, []byte(content), 0o600, "test.point"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || string(data) != content {
			t.Fatalf("expected %q in %s, got %q (%v)", content, path, data, err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("expected mode 0600, got %v", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("expected only %s in %s, no temporary file, got %v", filepath.Base(path), dir, entries)
	}
}

// A failed write names the file and leaves nothing behind.
func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "berth-recovery.json")
	err := WriteFile(path, []byte("{}"), 0o600, "test.point")
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("expected an error naming %s, got %v", path, err)
	}
	// The rename fails when path is a directory: the temporary file goes.
	busy := filepath.Join(dir, "busy")
	if err := os.Mkdir(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(busy, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(busy, []byte("{}"), 0o600, "test.point"); err == nil {
		t.Errorf("expected an error writing over the directory %s", busy)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("expected no temporary file left in %s, got %v", dir, entries)
	}
}
