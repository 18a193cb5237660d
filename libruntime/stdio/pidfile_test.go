package stdio

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pid")
	if err := WritePidFile(path, 4242); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "4242" {
		t.Fatalf("pid file = %q, %v; want 4242", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary file left beside the pid file: %v", entries)
	}
	if err := WritePidFile(filepath.Join(dir, "no", "such", "pid"), 1); err == nil {
		t.Fatal("WritePidFile into a missing directory: want an error")
	}
}
