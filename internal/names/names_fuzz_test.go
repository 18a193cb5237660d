package names

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzContainerID checks that every id ContainerID accepts names exactly one
// entry directly inside the directory it is joined to (so that no id
// reaches outside berth's state root or berth-net's records, whatever the
// command), that libcontainer would accept it too (runc's validateID:
// letters, digits, '_', '+', '-', '.'), so that no accepted id fails later
// with a vaguer error, and that every refusal says what it checked.
// Seeds: testdata/fuzz/FuzzContainerID.
func FuzzContainerID(f *testing.F) {
	for _, s := range []string{"abc", "../x", "/abs", "a\x00b", ".", "..", "a+b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ContainerID(id)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "container id") {
				t.Fatalf("ContainerID(%q): error %q does not say what it checked", id, err)
			}
			return
		}
		const root = "/run/berth"
		dir := filepath.Join(root, id)
		if filepath.Dir(dir) != root || filepath.Base(dir) != id {
			t.Fatalf("ContainerID accepts %q, whose state dir %s is not an entry of %s", id, dir, root)
		}
		if len(id) == 0 || len(id) > MaxContainerID {
			t.Fatalf("ContainerID accepts %q of length %d", id, len(id))
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+-.", c) >= 0) {
				t.Fatalf("ContainerID accepts %q with byte %q, which libcontainer refuses", id, c)
			}
		}
	})
}
