package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/bundle"
	"github.com/berth-runtime/berth/libruntime/lifecycle"
	"github.com/berth-runtime/berth/libruntime/state"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a new process in a running container",
	ArgsUsage: "<container-id> <command> [args...] || -p process.json <container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket that receives the master end of the process's pseudo-terminal"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "AF_UNIX socket that receives a pidfd of the process"},
		&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (K=V)"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "uid[:gid] to run as"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional group ids"},
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json (runtime-spec process); the command line is then not used"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the process"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid to this file"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label for the process"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile for the process"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability (e.g. CAP_NET_ADMIN)"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the process"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "run in a sub-cgroup: [controller[,controller]:]path"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		code, err := execProcess(c)
		if err != nil {
			// 255, as runc: any code below it may be the process's own.
			fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)
		}
		os.Exit(code)
		return nil
	},
}

func execProcess(c *cli.Context) (int, error) {
	pidFile, err := absFlag(c, "pid-file")
	if err != nil {
		return -1, err
	}
	consoleSocket, err := absFlag(c, "console-socket")
	if err != nil {
		return -1, err
	}
	pidfdSocket, err := absFlag(c, "pidfd-socket")
	if err != nil {
		return -1, err
	}
	ct, err := loadContainer(c)
	if err != nil {
		return -1, err
	}
	status, err := ct.Status()
	if err != nil {
		return -1, err
	}
	switch {
	case status == libcontainer.Stopped:
		return -1, fmt.Errorf("container %s is stopped", ct.ID())
	case status == libcontainer.Paused && !c.Bool("ignore-paused"):
		// runc's wording, which scripts match.
		return -1, errors.New("cannot exec in a paused container (use --ignore-paused to override)")
	}
	spec, err := execSpec(c, ct)
	if err != nil {
		return -1, err
	}
	if err := dropUnavailableCapabilities(spec); err != nil {
		return -1, err
	}
	// Its RLIMIT_AS, if any, is held back from libcontainer and set on the
	// init as it pauses before its execve (aslimit.PauseWatch).
	proc, err := newUserProcess(spec)
	if err != nil {
		return -1, err
	}
	if len(proc.Rlimits) == 0 {
		// A process.json without rlimits (containerd's shim sends one)
		// gets the container's. libcontainer falls back to its saved
		// config, whose RLIMIT_AS entry create replaced with a no-op (the
		// real one waits in berth-hooks.json for start): that RLIMIT_AS is
		// this process's too, set as for any other.
		proc.Rlimits = slices.Clone(ct.Config().Rlimits)
		saved, err := lifecycle.LoadDeferred(state.Dir(c.String("root"), ct.ID()))
		if err != nil {
			return -1, err
		}
		proc.addressSpace = saved.AddressSpace
	}
	cgPaths, err := subCgroupPaths(c.StringSlice("cgroup"))
	if err != nil {
		return -1, err
	}
	r := &runner{
		container:      ct,
		action:         actExec,
		detach:         c.Bool("detach"),
		consoleSocket:  consoleSocket,
		pidfdSocket:    pidfdSocket,
		pidFile:        pidFile,
		preserveFDs:    c.Int("preserve-fds"),
		subCgroupPaths: cgPaths,
	}
	return r.run(proc)
}

// execSpec is the process to exec: process.json as given, or the
// container's own process with the command line's changes.
func execSpec(c *cli.Context, ct *libcontainer.Container) (*specs.Process, error) {
	if path := c.String("process"); path != "" {
		return bundle.LoadProcess(path)
	}
	if c.NArg() < 2 {
		return nil, errors.New("exec: no command given (and no -p process.json)")
	}
	dir, ok := utils.SearchLabels(ct.Config().Labels, "bundle")
	if !ok {
		return nil, fmt.Errorf("container %s: no bundle recorded", ct.ID())
	}
	data, err := os.ReadFile(filepath.Join(dir, bundle.ConfigName))
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	spec, err := bundle.Parse(data, filepath.Join(dir, bundle.ConfigName))
	if err != nil {
		return nil, err
	}
	p := spec.Process
	p.Args = c.Args().Slice()[1:]
	p.Terminal = c.Bool("tty")
	p.Env = append(p.Env, c.StringSlice("env")...)
	if v := c.String("cwd"); v != "" {
		p.Cwd = v
	}
	if v := c.String("apparmor"); v != "" {
		p.ApparmorProfile = v
	}
	if v := c.String("process-label"); v != "" {
		p.SelinuxLabel = v
	}
	if c.IsSet("no-new-privs") {
		p.NoNewPrivileges = c.Bool("no-new-privs")
	}
	if caps := c.StringSlice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		pc := p.Capabilities
		for _, cp := range caps {
			pc.Bounding = append(pc.Bounding, cp)
			pc.Effective = append(pc.Effective, cp)
			pc.Permitted = append(pc.Permitted, cp)
			// An inheritable set means the process expects capabilities
			// to survive exec; ambient makes that so for the added one.
			if pc.Inheritable != nil {
				pc.Ambient = append(pc.Ambient, cp)
			}
		}
	}
	if u := c.String("user"); u != "" {
		uidStr, gidStr, hasGID := strings.Cut(u, ":")
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: uid %q is not a number", u, uidStr)
		}
		p.User.UID = uint32(uid)
		if hasGID {
			gid, err := strconv.ParseUint(gidStr, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: gid %q is not a number", u, gidStr)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range c.Int64Slice("additional-gids") {
		if g < 0 || g > 1<<32-1 {
			return nil, fmt.Errorf("--additional-gids: %d is not a valid gid", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	return p, bundle.ValidateProcess(p, "process")
}

// subCgroupPaths parses --cgroup values: "path" alone, or
// "controller[,controller]:path" once per controller.
func subCgroupPaths(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	paths := make(map[string]string, len(args))
	for _, a := range args {
		ctrls, path, ok := strings.Cut(a, ":")
		if !ok {
			if len(args) != 1 {
				return nil, fmt.Errorf("--cgroup %q: needs a <controller>: prefix when several are given", a)
			}
			paths[""] = a
			continue
		}
		for _, ctrl := range strings.Split(ctrls, ",") {
			if ctrl == "" {
				return nil, fmt.Errorf("--cgroup %q: empty controller name", a)
			}
			if _, dup := paths[ctrl]; dup {
				return nil, fmt.Errorf("--cgroup %q: controller %s given twice", a, ctrl)
			}
			paths[ctrl] = path
		}
	}
	return paths, nil
}
