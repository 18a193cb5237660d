package names

import (
	"strings"
	"testing"
)

// TestRules is the table of what each kind accepts and refuses, with the
// words the refusal must contain (the kind and the reason).
func TestRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	ifname := func(s string) error { return InterfaceName("--bridge", s) }
	for _, tc := range []struct {
		check   func(string) error
		kind    string
		name    string
		mention string // "" if accepted
	}{
		// runc's validateID: letters, digits, '_', '+', '-', '.'; not "." or "..".
		{ContainerID, "container id", "a", ""},
		{ContainerID, "container id", "my_ctr-1.2+x", ""},
		{ContainerID, "container id", ".x", ""},
		{ContainerID, "container id", "-x", ""},
		{ContainerID, "container id", "...", ""},
		{ContainerID, "container id", long(MaxContainerID), ""},
		{ContainerID, "container id", long(MaxContainerID + 1), "longer than 255 bytes"},
		{ContainerID, "container id", long(1024), "longer than 255 bytes"},
		{ContainerID, "container id", "", "must not be empty"},
		{ContainerID, "container id", ".", "path element"},
		{ContainerID, "container id", "..", "path element"},
		{ContainerID, "container id", "a/b", "'/'"},
		{ContainerID, "container id", "../x", "'/'"},
		{ContainerID, "container id", "/abs", "'/'"},
		{ContainerID, "container id", "a\x00b", `'\x00'`},
		{ContainerID, "container id", "a b", "' '"},
		{ContainerID, "container id", "a:b", "':'"},
		{ContainerID, "container id", "a@b", "'@'"},
		{ContainerID, "container id", "ctré", "'é'"},
		// Docker's network names: a letter or digit, then letters, digits, '_', '.', '-'.
		{NetworkName, "network name", "bridge", ""},
		{NetworkName, "network name", "a", ""},
		{NetworkName, "network name", "9front.end_1-x", ""},
		{NetworkName, "network name", long(MaxNetworkName), ""},
		{NetworkName, "network name", long(MaxNetworkName + 1), "longer than 64 bytes"},
		{NetworkName, "network name", "", "must not be empty"},
		{NetworkName, "network name", ".hidden", "begin with a letter or a digit"},
		{NetworkName, "network name", "-x", "begin with a letter or a digit"},
		{NetworkName, "network name", "_x", "begin with a letter or a digit"},
		{NetworkName, "network name", "..", "path element"},
		{NetworkName, "network name", "a+b", "'+'"},
		{NetworkName, "network name", "a/b", "'/'"},
		{NetworkName, "network name", "a:b", "':'"},
		{NetworkName, "network name", "a\x00", `'\x00'`},
		// Interface names: 1-15 bytes of letters, digits, '_', '-', '.'.
		{ifname, "--bridge: interface name", "berth0", ""},
		{ifname, "--bridge: interface name", "br-x_1.2", ""},
		{ifname, "--bridge: interface name", long(MaxInterfaceName), ""},
		{ifname, "--bridge: interface name", long(MaxInterfaceName + 1), "longer than 15 bytes"},
		{ifname, "--bridge: interface name", "", "must not be empty"},
		{ifname, "--bridge: interface name", ".", "path element"},
		{ifname, "--bridge: interface name", "a@b", "'@'"},
		{ifname, "--bridge: interface name", "a:b", "':'"},
		{ifname, "--bridge: interface name", "a b", "' '"},
		{ifname, "--bridge: interface name", "a/b", "'/'"},
	} {
		err := tc.check(tc.name)
		switch {
		case tc.mention == "" && err != nil:
			t.Errorf("%s %q: refused (%v), want accepted", tc.kind, tc.name, err)
		case tc.mention != "" && err == nil:
			t.Errorf("%s %q: accepted, want refused with %q", tc.kind, tc.name, tc.mention)
		case err != nil && (!strings.HasPrefix(err.Error(), tc.kind) || !strings.Contains(err.Error(), tc.mention)):
			t.Errorf("%s %q: error %q, want it to begin with %q and mention %q", tc.kind, tc.name, err, tc.kind, tc.mention)
		}
	}
}
