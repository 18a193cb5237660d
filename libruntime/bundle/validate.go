package bundle

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaceTypes are the Linux namespace types berth (through libcontainer)
// can create or join, in the order the runtime spec lists them.
var namespaceTypes = []specs.LinuxNamespaceType{
	specs.PIDNamespace,
	specs.NetworkNamespace,
	specs.MountNamespace,
	specs.IPCNamespace,
	specs.UTSNamespace,
	specs.UserNamespace,
	specs.CgroupNamespace,
	specs.TimeNamespace,
}

// rlimitTypes are the resource limits setrlimit(2) knows on Linux; runc
// accepts exactly these names.
var rlimitTypes = []string{
	"RLIMIT_CPU",
	"RLIMIT_FSIZE",
	"RLIMIT_DATA",
	"RLIMIT_STACK",
	"RLIMIT_CORE",
	"RLIMIT_RSS",
	"RLIMIT_NPROC",
	"RLIMIT_NOFILE",
	"RLIMIT_MEMLOCK",
	"RLIMIT_AS",
	"RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE",
	"RLIMIT_NICE",
	"RLIMIT_RTPRIO",
	"RLIMIT_RTTIME",
}

// validateSpec checks the fields of a configuration that can be checked
// without the filesystem, returning the first problem found.
//
// mounts[] is deliberately not checked. The runtime spec says a Linux mount
// destination MUST be absolute, but runc v1.5.2's specconv only logs a
// warning for a relative one (and mounts it relative to the rootfs), so
// configurations that work with runc exist in the wild. Drop-in
// compatibility wins.
func validateSpec(s *specs.Spec) error {
	if err := validateVersion(s.Version); err != nil {
		return err
	}
	if s.Root == nil {
		return errors.New("root: required field missing")
	}
	if s.Root.Path == "" {
		return errors.New("root.path: required field missing")
	}
	// The spec makes process optional (for runtimes that create a container
	// and run processes in it later), but like runc, berth starts the
	// container's init from it.
	if err := ValidateProcess(s.Process, "process"); err != nil {
		return err
	}
	// Namespaces before hostname: a hostname complaint about a malformed
	// namespace list would send the user to the wrong place.
	if err := validateNamespaces(namespaces(s)); err != nil {
		return err
	}
	// Setting the hostname of a shared UTS namespace would rename the host;
	// runc's configs/validate refuses it, and so do we, earlier and by name.
	if s.Hostname != "" && !hasNamespace(s, specs.UTSNamespace) {
		return errors.New(`hostname: set, but the container shares the host's UTS namespace; add {"type": "uts"} to linux.namespaces or remove hostname`)
	}
	if s.Domainname != "" && !hasNamespace(s, specs.UTSNamespace) {
		return errors.New(`domainname: set, but the container shares the host's UTS namespace; add {"type": "uts"} to linux.namespaces or remove domainname`)
	}
	if s.Hooks != nil {
		if err := validateHooks(s.Hooks); err != nil {
			return err
		}
	}
	return nil
}

// ValidateProcess checks a process description, from config.json or from
// "exec -p". field is the JSON path of p, used to prefix errors (e.g.
// "process"); "" means p is the whole document, so errors name its fields
// bare ("args", "cwd").
func ValidateProcess(p *specs.Process, field string) error {
	if p == nil {
		if field == "" {
			field = "process"
		}
		return fmt.Errorf("%s: required field missing", field)
	}
	if len(p.Args) == 0 {
		return fmt.Errorf("%s: must not be empty, it names the program to run", join(field, "args"))
	}
	if p.Args[0] == "" {
		return fmt.Errorf("%s[0]: must not be empty, it names the program to run", join(field, "args"))
	}
	if p.Cwd == "" {
		return fmt.Errorf("%s: required field missing", join(field, "cwd"))
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("%s: %q is not absolute", join(field, "cwd"), p.Cwd)
	}
	// Duplicate types are not rejected: runc applies them in order, so the
	// last one wins, and configurations may rely on that.
	for i, rl := range p.Rlimits {
		if !slices.Contains(rlimitTypes, rl.Type) {
			return fmt.Errorf("%s[%d].type: unknown rlimit %q (known: %s)",
				join(field, "rlimits"), i, rl.Type, strings.Join(rlimitTypes, ", "))
		}
		// setrlimit(2) refuses it; berth sets RLIMIT_AS only at `start`,
		// which must not be where such a config fails.
		if rl.Soft > rl.Hard {
			return fmt.Errorf("%s[%d]: %s soft limit %d is above its hard limit %d",
				join(field, "rlimits"), i, rl.Type, rl.Soft, rl.Hard)
		}
	}
	return validateCapabilities(p.Capabilities, join(field, "capabilities"))
}

// validateCapabilities rejects capability names that no kernel knows, such
// as "CAP_TEST" or "NET_ADMIN" without its prefix: the runtime spec says a
// value that cannot be mapped to a kernel interface MUST be an error, and
// libcontainer would only log a warning and drop it. A name the kernel
// does know but this host's kernel lacks (one newer than the running
// kernel) is valid: compat.DropUnavailableCapabilities drops it with a
// warning, so a configuration keeps working on older kernels.
func validateCapabilities(c *specs.LinuxCapabilities, field string) error {
	if c == nil {
		return nil
	}
	known := capabilities.KnownCapabilities()
	sets := []struct {
		name  string
		names []string
	}{
		{"bounding", c.Bounding},
		{"effective", c.Effective},
		{"inheritable", c.Inheritable},
		{"permitted", c.Permitted},
		{"ambient", c.Ambient},
	}
	for _, set := range sets {
		for i, name := range set.names {
			if !slices.Contains(known, name) {
				return fmt.Errorf("%s[%d]: unknown capability %q (names look like \"CAP_NET_ADMIN\")",
					join(field, set.name), i, name)
			}
		}
	}
	return nil
}

// join appends a JSON field name to a path that may be empty.
func join(field, name string) string {
	if field == "" {
		return name
	}
	return field + "." + name
}

// validateVersion accepts any SemVer 2.0.0 version with major version 1: the
// runtime spec keeps compatibility within a major version, so a 1.x runtime
// can run any 1.x configuration, including pre-releases and builds.
func validateVersion(v string) error {
	if v == "" {
		return errors.New("ociVersion: required field missing")
	}
	major, ok := semverMajor(v)
	if !ok {
		return fmt.Errorf("ociVersion %q: not a semantic version such as \"1.0.2\"; berth runs configurations of version 1.x", v)
	}
	if major != 1 {
		return fmt.Errorf("ociVersion %q: unsupported, berth runs configurations of version 1.x", v)
	}
	return nil
}

// semverMajor returns the major version of a SemVer 2.0.0 string
// (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]), and whether v is one.
func semverMajor(v string) (int, bool) {
	// Build metadata may contain '-', so cut it off before the pre-release.
	v, build, hasBuild := strings.Cut(v, "+")
	if hasBuild && !validIdentifiers(build) {
		return 0, false
	}
	core, pre, hasPre := strings.Cut(v, "-")
	if hasPre && !validIdentifiers(pre) {
		return 0, false
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, false
	}
	for _, p := range parts {
		// Numeric, and no leading zeros ("01" is not SemVer).
		if p == "" || strings.Trim(p, "0123456789") != "" || (len(p) > 1 && p[0] == '0') {
			return 0, false
		}
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil { // too large
		return 0, false
	}
	return major, true
}

// validIdentifiers reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers, as SemVer pre-release and build parts must be.
func validIdentifiers(s string) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
	}
	return true
}

func namespaces(s *specs.Spec) []specs.LinuxNamespace {
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Namespaces
}

// hasNamespace reports whether the container gets its own namespace of type
// t, either a new one or one it joins by path. Either way it does not share
// the runtime's, which is what runc's checks look at.
func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(namespaces(s), func(ns specs.LinuxNamespace) bool {
		return ns.Type == t
	})
}

// joinsNamespace reports whether the container joins an existing namespace
// of type t (one given by path) rather than creating one.
func joinsNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(namespaces(s), func(ns specs.LinuxNamespace) bool {
		return ns.Type == t && ns.Path != ""
	})
}

func validateNamespaces(list []specs.LinuxNamespace) error {
	seen := make(map[specs.LinuxNamespaceType]int)
	for i, ns := range list {
		field := fmt.Sprintf("linux.namespaces[%d].type", i)
		if ns.Type == "" {
			return fmt.Errorf("%s: required field missing", field)
		}
		if !slices.Contains(namespaceTypes, ns.Type) {
			return fmt.Errorf("%s: unknown namespace type %q (known: %s)", field, ns.Type, joinTypes(namespaceTypes))
		}
		if first, dup := seen[ns.Type]; dup {
			return fmt.Errorf("%s: duplicate namespace type %q, already at linux.namespaces[%d]", field, ns.Type, first)
		}
		seen[ns.Type] = i
	}
	return nil
}

func joinTypes(types []specs.LinuxNamespaceType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// hookList is one named list of hooks, named as in config.json.
type hookList struct {
	name  string
	hooks []specs.Hook
}

func hookLists(h *specs.Hooks) []hookList {
	return []hookList{
		{"prestart", h.Prestart}, //nolint:staticcheck // Deprecated, but still valid and run by runc.
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	}
}

// validateHooks checks the hook fields that need no filesystem. The spec
// requires every hook path to be absolute, wherever it is resolved, so this
// holds for startContainer hooks too.
func validateHooks(h *specs.Hooks) error {
	for _, list := range hookLists(h) {
		for i, hook := range list.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", list.name, i)
			if hook.Path == "" {
				return fmt.Errorf("%s.path: required field missing", field)
			}
			if !filepath.IsAbs(hook.Path) {
				return fmt.Errorf("%s.path: %q is not absolute", field, hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return fmt.Errorf("%s.timeout: must be greater than zero, got %d", field, *hook.Timeout)
			}
		}
	}
	return nil
}
