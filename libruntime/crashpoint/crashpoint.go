// Package crashpoint lets tests kill berth or berth-net at a named step,
// to prove that whatever a crash leaves behind is cleaned up by
// `berth delete -f` and `berth gc`.
//
// In ordinary builds Hit does nothing and costs nothing. Built with the
// `crashpoints` tag, Hit(name) sends SIGKILL to the calling process when
// the environment variable BERTH_CRASH_AT equals name: a real, unclean
// death at exactly that step, as a power cut or the OOM killer would cause.
package crashpoint

// EnvVar names the step to die at, in builds with the crashpoints tag.
const EnvVar = "BERTH_CRASH_AT"
