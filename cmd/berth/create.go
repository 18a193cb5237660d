package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/libruntime/bundle"
	"github.com/berth-runtime/berth/libruntime/compat"
	"github.com/berth-runtime/berth/libruntime/lifecycle"
	"github.com/berth-runtime/berth/libruntime/state"
	"github.com/berth-runtime/berth/libruntime/stdio"
)

// createFlags are shared by create and run.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the bundle directory (default: current directory)"},
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket that receives the master end of the container's pseudo-terminal"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "AF_UNIX socket that receives a pidfd of the container's init"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the container's init pid to this file"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to jail the process in its rootfs (for rootfs on ramdisks)"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring for the container"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"},
	}
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container",
	ArgsUsage: "<container-id>",
	Flags:     createFlags(),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		code, err := createAndStart(c, actCreate)
		if err != nil {
			return fmt.Errorf("%s create failed: %w", progName, err)
		}
		os.Exit(code)
		return nil
	},
}

// createAndStart is create and run: load and check the bundle, create the
// container's state and start its init through the runner.
func createAndStart(c *cli.Context, act action) (int, error) {
	id, err := containerID(c)
	if err != nil {
		return -1, err
	}
	// Paths given relative to the caller's directory must be resolved before
	// we move into the bundle.
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
	if c.Int("preserve-fds") < 0 {
		return -1, fmt.Errorf("--preserve-fds: must not be negative")
	}
	if c.Bool("systemd-cgroup") && !systemdRunning() {
		return -1, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system)")
	}
	b, err := bundle.Load(c.String("bundle"))
	if err != nil {
		return -1, err
	}
	if err := dropUnavailableCapabilities(b.Spec.Process); err != nil {
		return -1, err
	}
	// libcontainer labels the container with the working directory as its
	// bundle and resolves relative mount sources against it.
	if err := os.Chdir(b.Dir); err != nil {
		return -1, fmt.Errorf("bundle %s: %w", b.Dir, err)
	}
	root := c.String("root")
	notify := stdio.NewNotifySocket(os.Getenv("NOTIFY_SOCKET"), state.Dir(root, id))
	if notify != nil {
		notify.SetupSpec(b.Spec)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: c.Bool("systemd-cgroup"),
		NoPivotRoot:      c.Bool("no-pivot"),
		NoNewKeyring:     c.Bool("no-new-keyring"),
		Spec:             b.Spec,
		RootlessEUID:     os.Geteuid() != 0,
		RootlessCgroups:  rootlessCgroups(c),
	})
	if err != nil {
		return -1, fmt.Errorf("%s: %w", filepath.Join(b.Dir, bundle.ConfigName), err)
	}
	for _, w := range compat.Apply(cfg) {
		logrus.Warn(w)
	}
	proc, err := newUserProcess(b.Spec.Process)
	if err != nil {
		return -1, err
	}
	lifecycle.WrapPrestart(cfg)
	hooks := lifecycle.TakeDeferred(cfg)
	// `start` (or run) sets it on the init as it waits on the exec fifo.
	hooks.AddressSpace = proc.addressSpace

	ct, err := libcontainer.Create(root, id, cfg)
	if errors.Is(err, libcontainer.ErrExist) {
		return -1, fmt.Errorf("container %q already exists", id)
	}
	if err != nil {
		return -1, fmt.Errorf("create %s: %w", id, err)
	}
	crashpoint.Hit("create.statedir")
	// From here on a failure must not leave a half-made container behind.
	r := &runner{
		container:     ct,
		action:        act,
		detach:        c.Bool("detach"),
		keep:          c.Bool("keep"),
		subreaper:     !c.Bool("no-subreaper"),
		consoleSocket: consoleSocket,
		pidfdSocket:   pidfdSocket,
		pidFile:       pidFile,
		preserveFDs:   c.Int("preserve-fds"),
		notify:        notify,
		hooks:         hooks,
	}
	if err := prepareState(ct, root, act, notify, hooks); err != nil {
		r.destroy()
		return -1, err
	}
	if err := lifecycle.SaveRecovery(state.Dir(root, id), id, b.Dir, b.Spec.Annotations, cfg); err != nil {
		r.destroy()
		return -1, err
	}
	return r.run(proc)
}

func prepareState(ct *libcontainer.Container, root string, act action, notify *stdio.NotifySocket, hooks lifecycle.Deferred) error {
	if notify != nil {
		if err := notify.MakeDir(); err != nil {
			return err
		}
		if act == actRun {
			if err := notify.Bind(); err != nil {
				return err
			}
		}
	}
	return hooks.Save(state.Dir(root, ct.ID()))
}

func absFlag(c *cli.Context, name string) (string, error) {
	v := c.String(name)
	if v == "" {
		return "", nil
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", name, err)
	}
	return abs, nil
}

// rootlessCgroups follows runc's --rootless: "auto" means only when berth
// does not run as root.
func rootlessCgroups(c *cli.Context) bool {
	switch c.String("rootless") {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}
