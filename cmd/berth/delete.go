package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/lifecycle"
	"github.com/berth-runtime/berth/libruntime/state"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "delete a stopped container and everything it holds",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it is still running (SIGKILL)"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		id, err := containerID(c)
		if err != nil {
			return err
		}
		force := c.Bool("force")
		ct, err := libcontainer.Load(c.String("root"), id)
		if err != nil {
			if !errors.Is(err, libcontainer.ErrNotExist) {
				return fmt.Errorf("delete %s: %w", id, err)
			}
			// A state directory without state.json is what a crash of
			// create leaves before libcontainer's first state write; by
			// then the cgroup and the init may exist (lifecycle.Recover).
			dir := state.Dir(c.String("root"), id)
			if _, err := os.Stat(dir); err == nil {
				hooks, err := lifecycle.LoadDeferred(dir)
				if err != nil {
					return fmt.Errorf("delete %s: %w", id, err)
				}
				if err := lifecycle.Recover(dir, hooks); err != nil {
					return fmt.Errorf("delete %s: %w", id, err)
				}
			}
			_ = os.RemoveAll(dir)
			if force {
				return nil
			}
			return fmt.Errorf("container %q does not exist", id)
		}
		hooks, err := lifecycle.LoadDeferred(state.Dir(c.String("root"), id))
		if err != nil {
			return err
		}
		if force {
			return killAndDestroy(ct, hooks)
		}
		status, err := ct.Status()
		if err != nil {
			return err
		}
		if status != libcontainer.Stopped {
			// The runtime-spec: deleting a container that is not stopped
			// must fail and leave it alone (runc kills a created one).
			return fmt.Errorf("cannot delete container %s: it is %s, not stopped (use delete -f)", id, status)
		}
		return lifecycle.Destroy(ct, hooks)
	},
}
