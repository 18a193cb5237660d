// Command berth is an OCI container runtime with runc's command line, state
// JSON and exit codes, built on libcontainer.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	// Registers the device-rules cgroup controller implementations.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/internal/cliargs"
)

// Set by the Makefile.
var (
	version   = "dev"
	gitCommit = ""
)

const defaultRoot = "/run/berth"

// progName is the name berth was invoked by. Errors that scripts match
// ("runc run failed: ...") carry it, so berth installed under the name runc,
// as a drop-in, reads exactly like runc.
var progName = filepath.Base(os.Args[0])

func main() {
	app := newApp()
	if err := app.Run(cliargs.Reorder(app, os.Args, "exec", "ps")); err != nil {
		fatal(err)
	}
}

func newApp() *cli.App {
	cli.VersionPrinter = printVersion
	return &cli.App{
		Name:    "berth",
		Usage:   "run OCI containers (a drop-in for runc)",
		Version: version,
		// `exec -e A=1,2` sets A to "1,2": runc never split values on commas.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "enable debug logging"},
			&cli.StringFlag{Name: "log", Usage: "write berth's log to this file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: 'text' or 'json'"},
			&cli.StringFlag{Name: "root", Value: defaultRoot, Usage: "directory for container state (should be on tmpfs)"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "manage cgroups through systemd; cgroupsPath is \"slice:prefix:name\""},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors ('true', 'false', or 'auto')"},
		},
		Commands: []*cli.Command{
			createCommand, deleteCommand, eventsCommand, execCommand, featuresCommand,
			killCommand, listCommand, pauseCommand, psCommand, resumeCommand, runCommand,
			specCommand, startCommand, stateCommand, updateCommand,
			networkCommand, gcCommand,
		},
		Before: func(c *cli.Context) error {
			if err := configureLogging(c); err != nil {
				return err
			}
			return checkRoot(c)
		},
		// Usage errors are reported by fatal like every other error.
		OnUsageError: func(c *cli.Context, err error, _ bool) error { return err },
	}
}

func printVersion(c *cli.Context) {
	w := c.App.Writer
	fmt.Fprintln(w, "berth version", c.App.Version)
	if gitCommit != "" {
		fmt.Fprintln(w, "commit:", gitCommit)
	}
	fmt.Fprintln(w, "spec:", specs.Version)
	fmt.Fprintln(w, "go:", runtime.Version())
	if major, minor, micro := seccomp.Version(); major+minor+micro > 0 {
		fmt.Fprintf(w, "libseccomp: %d.%d.%d\n", major, minor, micro)
	}
}

// configureLogging sends logrus (used by berth and libcontainer alike) to
// --log in --log-format. containerd's shim reads the last error from that
// file as JSON lines with "level" and "msg".
func configureLogging(c *cli.Context) error {
	if c.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := c.String("log-format"); f {
	case "", "text":
	case "json":
		logrus.SetFormatter(new(logrus.JSONFormatter))
	default:
		return fmt.Errorf("--log-format: %q is not one of 'text', 'json'", f)
	}
	if path := c.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log: %w", err)
		}
		logrus.SetOutput(f)
	}
	return nil
}

func checkRoot(c *cli.Context) error {
	root, err := filepath.Abs(c.String("root"))
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if root == "/" {
		return errors.New("--root: must not be /")
	}
	if root == c.String("root") {
		// Set would mark the flag as given, and `list` tells a --root the
		// user gave from the default one.
		return nil
	}
	return c.Set("root", root)
}

// fatal reports err and exits 1. The error goes to the log (where a shim
// looks for it) and, if the log is not stderr, to stderr as well (where a
// person looks for it).
func fatal(err error) {
	fatalWithCode(err, 1)
}

func fatalWithCode(err error, code int) {
	logrus.Error(err)
	if out, ok := logrus.StandardLogger().Out.(*os.File); !ok || out.Fd() != os.Stderr.Fd() {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
	}
	os.Exit(code)
}

// libcontainerVersion is the runc module berth was built with, for
// `features` and bug reports.
var libcontainerVersion = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/opencontainers/runc" {
				return m.Version
			}
		}
	}
	return "unknown"
}()
