package cliargs

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	return &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "root"}, &cli.BoolFlag{Name: "debug"}},
		Commands: []*cli.Command{
			{Name: "delete", Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}}}},
			{Name: "kill", Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}}}},
			{Name: "create", Flags: []cli.Flag{&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}}, &cli.StringFlag{Name: "pid-file"}}},
			{Name: "exec", Flags: []cli.Flag{&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}}}},
			{Name: "hand-over", SkipFlagParsing: true},
			{Name: "network", Subcommands: []*cli.Command{
				{Name: "create", Flags: []cli.Flag{&cli.StringFlag{Name: "subnet"}, &cli.BoolFlag{Name: "internal"}}},
				{Name: "ls"},
			}},
		},
	}
}

func TestReorder(t *testing.T) {
	app := testApp()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"b", "delete", "c1", "--force"}, []string{"b", "delete", "--force", "c1"}},
		{[]string{"b", "--root", "/r", "kill", "c1", "KILL", "--all"}, []string{"b", "--root", "/r", "kill", "--all", "c1", "KILL"}},
		{[]string{"b", "create", "c1", "-b", "/b", "--pid-file", "p"}, []string{"b", "create", "-b", "/b", "--pid-file", "p", "c1"}},
		{[]string{"b", "create", "--bundle=/b", "c1"}, []string{"b", "create", "--bundle=/b", "c1"}},
		{[]string{"b", "create", "c1", "--", "-x"}, []string{"b", "create", "c1", "--", "-x"}},
		// Nested subcommands take their flags after their arguments too.
		{[]string{"b", "network", "create", "n1", "--subnet", "10.9.0.0/24", "--internal"},
			[]string{"b", "network", "create", "--subnet", "10.9.0.0/24", "--internal", "n1"}},
		{[]string{"b", "--debug", "network", "ls"}, []string{"b", "--debug", "network", "ls"}},
		// Kept commands and self-parsing ones are left alone.
		{[]string{"b", "exec", "c1", "sh", "-c", "true"}, []string{"b", "exec", "c1", "sh", "-c", "true"}},
		{[]string{"b", "hand-over", "n1", "--subnet", "x"}, []string{"b", "hand-over", "n1", "--subnet", "x"}},
		{[]string{"b", "--version"}, []string{"b", "--version"}},
		{[]string{"b", "unknown", "x", "--y"}, []string{"b", "unknown", "x", "--y"}},
	} {
		if got := Reorder(app, tc.in, "exec"); !slices.Equal(got, tc.want) {
			t.Errorf("Reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
