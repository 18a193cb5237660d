package network

import (
	"strings"
	"testing"
)

// TestBridgeMark checks that a bridge's mark names its root and network,
// reads back as such, fits in an alias however long the root's path, and
// that two roots' marks differ.
func TestBridgeMark(t *testing.T) {
	long := "/" + strings.Repeat("d", 300)
	for _, root := range []string{"/run/berth/net", "/tmp/a b/net", long} {
		l := Layout{Root: root}
		name := strings.Repeat("n", 64) // the longest network name
		mark := l.bridgeMark(name)
		if len(mark) > maxAlias || len(l.vethMark()) > maxAlias {
			t.Errorf("root %.20q...: marks of %d and %d bytes, longer than an alias (%d)", root, len(mark), len(l.vethMark()), maxAlias)
		}
		gotRoot, gotNet, ok := parseBridgeMark(mark)
		if !ok || gotRoot != l.rootTag() || gotNet != name {
			t.Errorf("parseBridgeMark(%q) = %q, %q, %v; want %q, %q, true", mark, gotRoot, gotNet, ok, l.rootTag(), name)
		}
		if root != long && gotRoot != root {
			t.Errorf("root %q: expected the mark to name it, got %q", root, gotRoot)
		}
	}
	if (Layout{Root: "/r1"}).bridgeMark("n") == (Layout{Root: "/r2"}).bridgeMark("n") {
		t.Error("two roots have the same bridge mark")
	}
	if (Layout{Root: long}).rootTag() == (Layout{Root: long + "x"}).rootTag() {
		t.Error("two long roots have the same tag")
	}
	for _, alias := range []string{"", "some bridge", "berth-net root=/r", "berth-net network=x"} {
		if _, _, ok := parseBridgeMark(alias); ok {
			t.Errorf("parseBridgeMark(%q): expected not a bridge mark", alias)
		}
	}
}
