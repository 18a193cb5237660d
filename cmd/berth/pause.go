package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "freeze every process in the container (cgroup freezer)",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		if err := ct.Pause(); err != nil {
			return fmt.Errorf("pause %s: %w", ct.ID(), err)
		}
		return nil
	},
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		if err := ct.Resume(); err != nil {
			return fmt.Errorf("resume %s: %w", ct.ID(), err)
		}
		return nil
	},
}
