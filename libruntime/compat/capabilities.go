package compat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DropUnavailableCapabilities removes from c the capabilities that berth
// knows but the running kernel does not have (numbered above
// /proc/sys/kernel/cap_last_cap), and returns a warning naming them.
// Engines send the newest capability list whatever the kernel, and runc
// drops what the kernel lacks with a warning; berth does the same, here,
// where the warning reaches the caller. Names no kernel knows are not
// touched: bundle validation refuses those, as the runtime-spec requires.
func DropUnavailableCapabilities(c *specs.LinuxCapabilities) ([]string, error) {
	if c == nil {
		return nil, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("capabilities: the kernel's last capability: %w", err)
	}
	return dropAbove(c, last), nil
}

// dropAbove removes from every set of c the known capabilities numbered
// above last.
func dropAbove(c *specs.LinuxCapabilities, last capability.Cap) []string {
	unavailable := make(map[string]bool)
	for _, cp := range capability.ListKnown() {
		if cp > last {
			unavailable[capName(cp)] = true
		}
	}
	var dropped []string
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Inheritable, &c.Permitted, &c.Ambient} {
		*set = slices.DeleteFunc(*set, func(name string) bool {
			if !unavailable[name] {
				return false
			}
			if !slices.Contains(dropped, name) {
				dropped = append(dropped, name)
			}
			return true
		})
	}
	if len(dropped) == 0 {
		return nil
	}
	slices.Sort(dropped)
	return []string{fmt.Sprintf("ignoring capabilities this kernel does not have (its last is %s): %s",
		capName(last), strings.Join(dropped, ", "))}
}

// capName is a capability's name as config.json spells it.
func capName(c capability.Cap) string {
	return "CAP_" + strings.ToUpper(c.String())
}
