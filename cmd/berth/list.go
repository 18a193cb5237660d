package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/state"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list the containers under --root",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print container ids only"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("--format: %q is not one of 'table', 'json'", format)
		}
		all, err := state.List(c.String("root"), func(id string, err error) {
			fmt.Fprintf(os.Stderr, "%s: list: container %s: %v\n", progName, id, err)
		})
		// As runc: a default root that does not exist yet only means no
		// container was made; a --root the user named must exist.
		if errors.Is(err, fs.ErrNotExist) && !c.IsSet("root") {
			all, err = nil, nil
		}
		if err != nil {
			return err
		}
		if c.Bool("quiet") {
			for _, s := range all {
				fmt.Println(s.ID)
			}
			return nil
		}
		if format == "json" {
			// An empty list prints `null`, as runc's does.
			return json.NewEncoder(os.Stdout).Encode(all)
		}
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range all {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n",
				s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	},
}
