// Package compat adjusts a libcontainer configuration where libcontainer
// v1.5.2 is stricter than the runtime spec, and than runc 1.1, about
// settings the kernel ignores anyway. Configurations that older runtimes
// ran (the OCI runtime-tools suite has several) keep running, and berth
// says what it dropped instead of refusing to create the container.
//
// Each adjustment only removes something without effect; none of them
// widens what the container may do.
package compat

import (
	"fmt"

	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// Apply makes every adjustment to cfg and returns one warning per change
// the user should hear about.
func Apply(cfg *configs.Config) []string {
	clearFifoNumbers(cfg)
	return dropBindMountData(cfg)
}

// dropBindMountData removes filesystem-specific options (the mount data,
// e.g. "mode=755,size=1k") from bind mounts. The kernel ignores data on
// MS_BIND, and runc 1.1 passed it along to be ignored; libcontainer v1.5.2
// refuses the whole configuration instead ("bind mounts cannot have any
// filesystem-specific options applied").
func dropBindMountData(cfg *configs.Config) []string {
	var warnings []string
	for _, m := range cfg.Mounts {
		if !m.IsBind() || m.Data == "" {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("mount %s: ignoring options %q: a bind mount takes no filesystem options",
			m.Destination, m.Data))
		m.Data = ""
	}
	return warnings
}

// clearFifoNumbers zeroes the major:minor of FIFO devices. The runtime spec
// requires them "unless type is p", and mknod(2) ignores them for a FIFO,
// but libcontainer v1.5.2 checks that every node it made has the numbers it
// asked for, and a FIFO always has 0:0 ("new p device inode ... has
// incorrect major:minor"). No warning: the spec says the numbers mean
// nothing here.
func clearFifoNumbers(cfg *configs.Config) {
	for _, d := range cfg.Devices {
		if d.Type == devices.FifoDevice {
			d.Major, d.Minor = 0, 0
		}
	}
}
