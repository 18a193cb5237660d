package state

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateID checks that every id ValidateID accepts names exactly one
// entry directly inside the state root (so that no id reaches outside it,
// whatever the command: create, delete -f, state...), and that
// libcontainer would accept it too (its rule: letters, digits, '_', '+',
// '-', '.'), so that no accepted id fails later with a vaguer error.
// Seeds: testdata/fuzz/FuzzValidateID.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"abc", "../x", "/abs", "a\x00b", ".", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "container id") {
				t.Fatalf("ValidateID(%q): error %q does not say what it checked", id, err)
			}
			return
		}
		const root = "/run/berth"
		dir := Dir(root, id)
		if filepath.Dir(dir) != root || filepath.Base(dir) != id {
			t.Fatalf("ValidateID accepts %q, whose state dir %s is not an entry of %s", id, dir, root)
		}
		if len(id) == 0 || len(id) > MaxIDLength {
			t.Fatalf("ValidateID accepts %q of length %d", id, len(id))
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+-.", c) >= 0) {
				t.Fatalf("ValidateID accepts %q with byte %q, which libcontainer refuses", id, c)
			}
		}
	})
}
