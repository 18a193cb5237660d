package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/state"
)

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "print the state of a container as JSON",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		s, err := state.Describe(ct)
		if err != nil {
			return err
		}
		// Indented and without a trailing newline, byte for byte as runc.
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	},
}
