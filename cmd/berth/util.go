package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/internal/names"
)

type argCount int

const (
	exactArgs argCount = iota
	minArgs
	maxArgs
)

// checkArgs enforces a command's positional argument count.
func checkArgs(c *cli.Context, n int, kind argCount) error {
	got := c.NArg()
	var bad bool
	var want string
	switch kind {
	case exactArgs:
		bad, want = got != n, "exactly"
	case minArgs:
		bad, want = got < n, "at least"
	case maxArgs:
		bad, want = got > n, "at most"
	}
	if bad {
		_ = cli.ShowCommandHelp(c, c.Command.Name)
		return fmt.Errorf("%s: takes %s %d argument(s), got %d", c.Command.Name, want, n, got)
	}
	return nil
}

// containerID returns the first argument, checked.
func containerID(c *cli.Context) (string, error) {
	id := c.Args().First()
	if err := names.ContainerID(id); err != nil {
		return "", err
	}
	return id, nil
}

// loadContainer loads the container named by the first argument.
func loadContainer(c *cli.Context) (*libcontainer.Container, error) {
	id, err := containerID(c)
	if err != nil {
		return nil, err
	}
	ct, err := libcontainer.Load(c.String("root"), id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil, fmt.Errorf("container %q does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return ct, nil
}

// systemdRunning reports whether systemd is the init system, the way
// sd_booted(3) tells.
func systemdRunning() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}
