// Package drift is how `berth network check` and `reload` report and
// repair what the kernel lacks, in hooks/network (links, addresses,
// sysctls) and hooks/firewall (chains, rules, map elements) alike: each
// side lists Steps, and Settle reports them, restoring each when asked.
package drift

import "github.com/berth-runtime/berth/internal/crashpoint"

// Drift is one kernel object that berth's records call for and the kernel
// lacks, written as the command that would make it.
type Drift struct {
	Object string
	Err    error // restoring it failed (repair only)
}

// Step is what one restore call brings back: a bridge, one network's
// rules, one container's published ports. A restore is all or nothing.
type Step struct {
	Missing []string
	Restore func() error
}

// Settle turns the steps into the drift report, restoring in order each
// step with something missing when repair is set; crashPoint is hit after
// each restore (internal/crashpoint). A failed step does not stop the
// others: one container's clashing port must not keep the rest of the host
// broken.
func Settle(steps []Step, repair bool, crashPoint string) []Drift {
	var out []Drift
	for _, s := range steps {
		if len(s.Missing) == 0 {
			continue
		}
		var err error
		if repair {
			err = s.Restore()
			crashpoint.Hit(crashPoint)
		}
		for _, m := range s.Missing {
			out = append(out, Drift{Object: m, Err: err})
		}
	}
	return out
}
