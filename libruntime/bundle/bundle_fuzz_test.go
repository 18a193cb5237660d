package bundle

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzParse feeds arbitrary bytes to the config.json loader. Whatever the
// input, Parse must not panic, and its errors must name their source. What
// it accepts must hold the properties create relies on, parse again to the
// same configuration once written back, and convert to a libcontainer
// configuration without a panic (a panic there would kill `berth create`
// with a stack trace instead of an error). Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(mustJSONSeed(validSpec()))
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse(data, "config.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config.json: ") {
				t.Fatalf("error %q does not begin with its source", err)
			}
			return
		}
		checkAccepted(t, spec)

		again, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("accepted configuration does not marshal: %v", err)
		}
		spec2, err := Parse(again, "config.json")
		if err != nil {
			t.Fatalf("accepted configuration, written back, is refused: %v\n%s", err, again)
		}
		if back, _ := json.Marshal(spec2); !bytes.Equal(back, again) {
			t.Fatalf("accepted configuration changes when written back and parsed again:\n%s\n%s", again, back)
		}

		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("specconv panics on a configuration Parse accepts: %v\n%s", r, again)
				}
			}()
			_, _ = specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "fuzz", Spec: spec})
		}()
	})
}

func mustJSONSeed(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// checkAccepted holds an accepted configuration to what validateSpec
// promises: everything create uses before the filesystem is looked at.
func checkAccepted(t *testing.T, s *specs.Spec) {
	t.Helper()
	if major, ok := semverMajor(s.Version); !ok || major != 1 {
		t.Fatalf("accepted ociVersion %q", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		t.Fatalf("accepted a configuration without root.path")
	}
	p := s.Process
	if p == nil || len(p.Args) == 0 || p.Args[0] == "" || !filepath.IsAbs(p.Cwd) {
		t.Fatalf("accepted process %+v", p)
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range namespaces(s) {
		if !slices.Contains(namespaceTypes, ns.Type) || seen[ns.Type] {
			t.Fatalf("accepted namespaces %+v", namespaces(s))
		}
		seen[ns.Type] = true
	}
	if (s.Hostname != "" || s.Domainname != "") && !seen[specs.UTSNamespace] {
		t.Fatalf("accepted a hostname without a UTS namespace")
	}
	if s.Hooks != nil {
		for _, list := range hookLists(s.Hooks) {
			for _, h := range list.hooks {
				if !filepath.IsAbs(h.Path) || (h.Timeout != nil && *h.Timeout <= 0) {
					t.Fatalf("accepted %s hook %+v", list.name, h)
				}
			}
		}
	}
}
