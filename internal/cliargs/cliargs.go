// Package cliargs lets berth's commands take their flags after their
// positional arguments, as runc's (and Docker's) command lines do:
// `berth delete ID --force`, `berth network create NAME --subnet CIDR`.
// urfave/cli v2 stops parsing flags at the first positional argument, so
// the arguments are reordered before the app sees them.
package cliargs

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Reorder moves the flags of the command named in args (following nested
// subcommands, as in `network create`) in front of its positional
// arguments. Commands whose trailing arguments belong to another program
// are left alone: those named in keep (exec's command line, ps's ps
// options), those with SkipFlagParsing (they parse their own), and
// everything after "--".
func Reorder(app *cli.App, args []string, keep ...string) []string {
	// Skip the global flags, then walk down the command path.
	i := skipFlags(app.Flags, args, 1)
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	for cmd != nil && i+1 < len(args) {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		cmd, i = sub, i+1
	}
	if cmd == nil || cmd.SkipFlagParsing || len(cmd.Subcommands) > 0 {
		return args
	}
	for _, k := range keep {
		if cmd.Name == k {
			return args
		}
	}
	head := append([]string{}, args[:i+1]...)
	var flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j:]...)
			break
		}
		if len(a) > 1 && strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
			continue
		}
		positional = append(positional, a)
	}
	return append(append(head, flags...), positional...)
}

// skipFlags returns the index of the first argument from i on that is not
// a flag (or a flag's value).
func skipFlags(flags []cli.Flag, args []string, i int) int {
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if takesValue(flags, args[i]) {
			i++
		}
		i++
	}
	return i
}

// takesValue reports whether arg is a flag given as "-name value" rather
// than "-name=value" or a boolean.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
