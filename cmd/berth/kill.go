package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default SIGTERM) to the container's init",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process of the container (libcontainer does so whenever the pid namespace is shared); a stopped container is not an error"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		if err := checkArgs(c, 2, maxArgs); err != nil {
			return err
		}
		sig := unix.SIGTERM
		if s := c.Args().Get(1); s != "" {
			var err error
			if sig, err = parseSignal(s); err != nil {
				return err
			}
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		err = ct.Signal(sig)
		// As runc: with --all (what containerd's shim sends on its way to
		// delete) a container that has already stopped is not an error.
		if errors.Is(err, libcontainer.ErrNotRunning) && c.Bool("all") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill %s: %w", ct.ID(), err)
		}
		return nil
	},
}

// parseSignal accepts a number (9), a name (KILL, SIGKILL) in any case.
// 0 is kill(2)'s null signal, as in runc: it only checks that the
// container's init is there ("container not running" if not).
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range 0-64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
