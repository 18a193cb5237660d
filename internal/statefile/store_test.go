package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestStore walks a claim's life as ipam and ports use it: index first,
// the claim (exclusive), its claimant, then the claim and the index gone;
// and a crashed writer's temporary file cleared by the next OpenStore.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, "test", claimsDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(claimsDir(dir)); err != nil || !fi.IsDir() {
		t.Fatalf("OpenStore did not make the subdirectory: %v", err)
	}
	if err := s.WriteIndex("c1", "claim-a\n"); err != nil {
		t.Fatal(err)
	}
	claim := s.Path("claims", "a")
	if err := s.Claim(claim, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(claim, "c2"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("a second Claim = %v, want fs.ErrExist", err)
	}
	if owner, ok, err := s.Claimant(claim); owner != "c1" || !ok || err != nil {
		t.Errorf("Claimant = %q, %v, %v; want c1", owner, ok, err)
	}
	if b, ok, err := s.ReadIndex("c1"); string(b) != "claim-a\n" || !ok || err != nil {
		t.Errorf("ReadIndex(c1) = %q, %v, %v", b, ok, err)
	}
	if owners, err := s.Owners(); err != nil || !reflect.DeepEqual(owners, []string{"c1"}) {
		t.Errorf("Owners = %v, %v", owners, err)
	}
	if err := Remove(claim); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveIndex("c1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Claimant(claim); ok || err != nil {
		t.Errorf("Claimant of a released claim = %v, %v", ok, err)
	}
	if _, ok, err := s.ReadIndex("c1"); ok || err != nil {
		t.Errorf("ReadIndex after RemoveIndex = %v, %v", ok, err)
	}

	// A writer that crashed with its temporary file in tmp/.
	if err := os.WriteFile(s.Path("tmp", "new-1-2"), []byte("c9"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(dir, "test"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(s.Path("tmp")); len(entries) != 0 {
		t.Errorf("OpenStore left %v in tmp/", entries)
	}
}

func claimsDir(dir string) string { return filepath.Join(dir, "claims") }
