package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"9": unix.SIGKILL, "KILL": unix.SIGKILL, "SIGKILL": unix.SIGKILL, "kill": unix.SIGKILL,
		"sigterm": unix.SIGTERM, "USR1": unix.SIGUSR1, "34": unix.Signal(34), "0": unix.Signal(0),
	} {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"FOO", "SIG", "", "-1", "65"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q): want an error", bad)
		}
	}
}

func TestSubCgroupPaths(t *testing.T) {
	got, err := subCgroupPaths([]string{"memory,pids:a/b", "cpu:c"})
	if err != nil || got["memory"] != "a/b" || got["pids"] != "a/b" || got["cpu"] != "c" {
		t.Errorf("subCgroupPaths = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"a", "b"}, {":x"}, {"cpu:a", "cpu:b"}} {
		if _, err := subCgroupPaths(bad); err == nil {
			t.Errorf("subCgroupPaths(%q): want an error", bad)
		}
	}
}
