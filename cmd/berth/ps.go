package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "show the processes running in a container",
	ArgsUsage: "<container-id> [ps options]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("--format: %q is not one of 'table', 'json'", format)
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		pids, err := ct.Processes()
		if err != nil {
			return fmt.Errorf("ps %s: %w", ct.ID(), err)
		}
		if format == "json" {
			return json.NewEncoder(os.Stdout).Encode(pids)
		}
		// The container's pids come from its cgroup; ps(1) formats them,
		// with whatever options the user passed, and we keep only ours.
		psArgs := c.Args().Slice()[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		out, err := exec.Command("ps", psArgs...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ps %s: %w: %s", strings.Join(psArgs, " "), err, out)
		}
		lines := strings.Split(string(out), "\n")
		col := slices.Index(strings.Fields(lines[0]), "PID")
		if col < 0 {
			return errors.New("ps: no PID column in its output")
		}
		fmt.Println(lines[0])
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) <= col {
				continue
			}
			if pid, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, pid) {
				fmt.Println(line)
			}
		}
		return nil
	},
}
