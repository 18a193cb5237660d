package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/bundle"
)

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "write a starter config.json for a bundle",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle directory to write config.json into (default: current directory)"},
		&cli.BoolFlag{Name: "rootless", Usage: "generate a configuration for a rootless container"},
		&cli.StringFlag{Name: "network", Usage: "network the container with berth-net: bridge, bridge:NAME, host, none or container:ID"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish a port, as docker -p: [hostIP:]hostPort[-end]:containerPort[-end][/tcp|/udp] (implies --network bridge)"},
		&cli.StringFlag{Name: "hostname", Usage: "the container's hostname"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		spec := specconv.Example()
		if c.Bool("rootless") {
			specconv.ToRootless(spec)
		}
		mode, publish := c.String("network"), c.StringSlice("publish")
		if mode == "" && len(publish) > 0 {
			mode = "bridge"
		}
		if mode != "" {
			if err := addNetworkHooks(spec, mode, publish, c.String("hostname")); err != nil {
				return err
			}
		} else if h := c.String("hostname"); h != "" {
			spec.Hostname = h
		}
		path := filepath.Join(c.String("bundle"), bundle.ConfigName)
		data, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		// O_EXCL: never overwrite a config the user may have edited.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("spec: %s exists; remove it first", path)
		}
		if err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("spec: %w", err)
		}
		return f.Close()
	},
}
