// Command berth-net gives OCI containers Docker-style networking as OCI
// hooks: `setup` as a createRuntime (or prestart) hook, `teardown` as a
// poststop hook, each reading the container's state JSON on stdin. It also
// manages networks (`network create|ls|inspect|rm|prune`), checks and
// restores what the kernel lost of them (`network check|reload`), and
// releases what crashed containers left (`gc`). `berth network ...` and
// `berth gc` run it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/hooks/network"
	"github.com/berth-runtime/berth/internal/cliargs"
	"github.com/berth-runtime/berth/internal/netcontract"
)

func main() {
	app := newApp()
	if err := app.Run(cliargs.Reorder(app, os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", netcontract.ErrorPrefix, err)
		os.Exit(1)
	}
}

func layout() network.Layout { return network.Layout{Root: network.Root()} }

func newApp() *cli.App {
	return &cli.App{
		Name:                      netcontract.Binary,
		Usage:                     "container networking as OCI hooks (state under $" + network.RootEnv + ", default " + network.DefaultRoot + ")",
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			{
				Name:  "setup",
				Usage: "connect the container whose OCI state is on stdin (createRuntime hook)",
				Flags: setupFlags(),
				Action: func(c *cli.Context) error {
					mode, err := network.ParseMode(c.String("network"))
					if err != nil {
						return err
					}
					st, err := readState(os.Stdin)
					if err != nil {
						return err
					}
					return layout().Setup(st, network.SetupOptions{Mode: mode, Publish: c.StringSlice("publish"), Hostname: c.String("hostname")})
				},
			},
			{
				Name:  "teardown",
				Usage: "undo setup for the container whose OCI state is on stdin (poststop hook)",
				Action: func(c *cli.Context) error {
					st, err := readState(os.Stdin)
					if err != nil {
						return err
					}
					return layout().Teardown(st.ID)
				},
			},
			{
				Name:  "gc",
				Usage: "release leases, ports, veths, rules and records of containers that no longer run",
				Action: func(c *cli.Context) error {
					rep, err := layout().GC()
					if rep != nil {
						enc := json.NewEncoder(os.Stdout)
						enc.SetIndent("", "  ")
						_ = enc.Encode(rep)
					}
					return err
				},
			},
			{
				Name:      "namespace-path",
				Usage:     "print the network namespace path of running container ID (for berth spec --network container:ID)",
				ArgsUsage: "ID",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("namespace-path: takes one container id")
					}
					p, err := layout().NamespacePath(c.Args().First())
					if err != nil {
						return err
					}
					fmt.Println(p)
					return nil
				},
			},
			{
				Name:  "check",
				Usage: "check setup's arguments without a container (berth spec runs it, so a bad value fails at spec, not at create)",
				Flags: setupFlags(),
				Action: func(c *cli.Context) error {
					return network.CheckSetupOptions(c.String("network"), c.StringSlice("publish"), c.String("hostname"))
				},
			},
			networkCommand,
		},
	}
}

func setupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "network", Value: "bridge", Usage: "bridge, bridge:NAME, host, none or container:ID"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "[hostIP:]hostPort[-end]:containerPort[-end][/tcp|/udp]"},
		&cli.StringFlag{Name: "hostname", Usage: "name in the container's /etc/hosts and /etc/hostname"},
	}
}

func readState(r io.Reader) (*specs.State, error) {
	var st specs.State
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return nil, fmt.Errorf("read the container's state JSON from stdin: %w", err)
	}
	if st.ID == "" {
		return nil, errors.New("container state on stdin has no id")
	}
	return &st, nil
}

var networkCommand = &cli.Command{
	Name:  "network",
	Usage: "manage bridge networks",
	Subcommands: []*cli.Command{
		{
			Name:      "create",
			Usage:     "define a bridge network",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "subnet", Usage: "IPv4 CIDR (default: the first /16 from 10.77.0.0/16, then 10.78-10.87 and 10.48-10.76, that no host route or network overlaps)"},
				&cli.StringFlag{Name: "gateway", Usage: "the bridge's address (default: the subnet's first)"},
				&cli.StringFlag{Name: "bridge", Usage: "bridge interface name, at most 15 bytes (default: bt-NAME)"},
				&cli.IntFlag{Name: "mtu", Usage: "MTU of the bridge and veths"},
				&cli.BoolFlag{Name: "internal", Usage: "no masquerade and no default route: members reach only each other"},
				&cli.StringFlag{Name: "firewall", Usage: "iptables or nftables (default " + network.DefaultFirewall + ")"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("network create: takes one network name")
				}
				n, err := layout().CreateNetwork(network.CreateOptions{
					Name: c.Args().First(), Subnet: c.String("subnet"), Gateway: c.String("gateway"),
					Bridge: c.String("bridge"), MTU: c.Int("mtu"), Internal: c.Bool("internal"), Firewall: c.String("firewall"),
				})
				if err != nil {
					return err
				}
				fmt.Println(n.Name)
				return nil
			},
		},
		{
			Name:    "ls",
			Aliases: []string{"list"},
			Usage:   "list networks",
			Action: func(c *cli.Context) error {
				nets, err := layout().ListNetworks()
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(os.Stdout, 8, 1, 3, ' ', 0)
				fmt.Fprintln(w, "NAME\tBRIDGE\tSUBNET\tGATEWAY\tFIREWALL\tINTERNAL")
				for _, n := range nets {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\n", n.Name, n.Bridge, n.Subnet, n.Gateway, n.Firewall, n.Internal)
				}
				return w.Flush()
			},
		},
		{
			Name:      "inspect",
			Usage:     "show a network and its containers as JSON",
			ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("network inspect: takes one network name")
				}
				in, err := layout().Inspect(c.Args().First())
				if err != nil {
					return err
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			},
		},
		{
			Name:      "rm",
			Aliases:   []string{"remove"},
			Usage:     "remove networks without containers",
			ArgsUsage: "NAME...",
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("network rm: takes network names")
				}
				for _, name := range c.Args().Slice() {
					if err := layout().RemoveNetwork(name); err != nil {
						return err
					}
					fmt.Println(name)
				}
				return nil
			},
		},
		{
			Name:  "prune",
			Usage: "remove every network without containers",
			Action: func(c *cli.Context) error {
				removed, err := layout().Prune()
				for _, n := range removed {
					fmt.Println(n)
				}
				return err
			},
		},
		{
			Name:  "check",
			Usage: "list what of the networks' bridges and rules and the containers' published ports the kernel lacks; exit 1 if anything",
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return fmt.Errorf("network check: takes no arguments, got %q", c.Args().First())
				}
				drift, err := layout().Reconcile(false)
				if err != nil {
					return err
				}
				for _, d := range drift {
					fmt.Println("missing:", d.Object)
				}
				if len(drift) > 0 {
					return fmt.Errorf("network check: %d objects missing (berth network reload restores them)", len(drift))
				}
				fmt.Println("all in place: every network's bridge and rules and every running container's published ports")
				return nil
			},
		},
		{
			Name:  "reload",
			Usage: "restore what of the networks' bridges and rules and the containers' published ports the kernel lacks (after a firewall flush or reload)",
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return fmt.Errorf("network reload: takes no arguments, got %q", c.Args().First())
				}
				drift, err := layout().Reconcile(true)
				failed := 0
				for _, d := range drift {
					if d.Err != nil {
						failed++
						fmt.Printf("not restored: %s: %v\n", d.Object, d.Err)
						continue
					}
					fmt.Println("restored:", d.Object)
				}
				if err != nil {
					return err
				}
				if failed > 0 {
					return fmt.Errorf("network reload: %d objects could not be restored", failed)
				}
				return nil
			},
		},
	},
}
