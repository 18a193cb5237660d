package compat

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestDropAboveRemovesOnlyCapabilitiesTheKernelLacks(t *testing.T) {
	c := &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_KILL", "CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"},
		Effective: []string{"CAP_CHECKPOINT_RESTORE", "CAP_KILL"},
		Ambient:   []string{"CAP_BPF"},
		Permitted: []string{"CAP_TEST"}, // unknown to every kernel: bundle validation's to refuse
	}
	warnings := dropAbove(c, capability.CAP_PERFMON)
	if want := []string{"CAP_KILL", "CAP_PERFMON"}; !slices.Equal(c.Bounding, want) {
		t.Errorf("bounding: expected %q, got %q", want, c.Bounding)
	}
	if want := []string{"CAP_KILL"}; !slices.Equal(c.Effective, want) {
		t.Errorf("effective: expected %q, got %q", want, c.Effective)
	}
	if len(c.Ambient) != 0 {
		t.Errorf("ambient: expected empty, got %q", c.Ambient)
	}
	if want := []string{"CAP_TEST"}; !slices.Equal(c.Permitted, want) {
		t.Errorf("permitted: expected the unknown name left for validation, got %q", c.Permitted)
	}
	if len(warnings) != 1 {
		t.Fatalf("expected one warning, got %q", warnings)
	}
	for _, name := range []string{"CAP_BPF, CAP_CHECKPOINT_RESTORE", "CAP_PERFMON"} {
		if !strings.Contains(warnings[0], name) {
			t.Errorf("warning: expected it to name %s, got %q", name, warnings[0])
		}
	}
}

func TestDropAboveKeepsEverythingOnANewKernel(t *testing.T) {
	known := capability.ListKnown()
	all := make([]string, len(known))
	for i, cp := range known {
		all[i] = capName(cp)
	}
	c := &specs.LinuxCapabilities{Bounding: slices.Clone(all)}
	if w := dropAbove(c, slices.Max(known)); len(w) != 0 {
		t.Errorf("expected no warning, got %q", w)
	}
	if !slices.Equal(c.Bounding, all) {
		t.Errorf("expected every known capability kept, got %q", c.Bounding)
	}
}
