//go:build !crashpoints

package crashpoint

// Hit does nothing: this build has no crash points.
func Hit(string) {}

// Enabled reports whether this build honours BERTH_CRASH_AT.
const Enabled = false
