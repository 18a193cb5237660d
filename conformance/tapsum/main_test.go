package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// write stores one test file's results as the runner does.
func write(t *testing.T, dir, name, tap, rc string) {
	t.Helper()
	for ext, s := range map[string]string{".tap": tap, ".rc": rc, ".err": ""} {
		if err := os.WriteFile(filepath.Join(dir, name+ext), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func statuses(f *File) string {
	var s []string
	for _, p := range f.Points {
		s = append(s, p.Status+":"+p.Desc)
	}
	return strings.Join(s, "|")
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, tap, rc, want string }{
		// A hook test: no test point, the error only in a YAML block.
		{"hookfail", "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n  ...\n1..0\n", "0", "not ok:(run)"},
		{"hookok", "TAP version 13\n1..0\n", "0", "ok:(run)"},
		// A *_fail test passes by printing nothing (the runtime refused
		// its config); any other test printing nothing has failed, even
		// with exit status 0.
		{"quiet_fail", "", "0", "ok:(run)"},
		{"quiet", "", "0", "not ok:(run)"},
		{"blank", "\n\n", "0", "not ok:(run)"},
		{"fatal_fail", "", "1", "not ok:(run)"},
		{"fatal", "TAP version 13\nok 1 - a\n1..1\n", "1", "ok:a|not ok:(run)"},
		{"short", "TAP version 13\nok 1 - a\n1..2\n", "0", "ok:a|not ok:(run)"},
		{"noplan", "TAP version 13\nok 1 - a\n", "0", "ok:a|not ok:(run)"},
		{"timeout", "TAP version 13\n", "124", "not ok:(run)"},
		{"skip", "TAP version 13\nok 1 # SKIP not set\nnot ok 2 - b\n1..2\n", "0", "skip:not set|not ok:b|ok:(run)"},
		// Two streams, each with its own plan.
		{"streams", "TAP version 13\nok 1 - a\n1..1\nTAP version 13\n1..0\n", "0", "ok:a|ok:(run)"},
		// An error attached to a passing point (SpecErrorOK) is no failure.
		{"attached", "TAP version 13\nok 1 - a\n  ---\n  {\n    \"error\": \"exit status 1\"\n  }\n  ...\n1..1\n", "0", "ok:a|ok:(run)"},
	}
	for _, c := range cases {
		write(t, dir, c.name, c.tap, c.rc)
		f, err := parse(dir, c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := statuses(f); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestInsideValidateYAMLGoesToNextPoint(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "h", "TAP version 13\nok 1 - a\n  ---\n  {\n    \"stdout\": \"not ok 3 - x\",\n    \"stderr\": \"\"\n  }\n  ...\nnot ok 2 - b\n1..2\n", "0")
	f, err := parse(dir, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Points[0].YAML) != 0 || len(f.Points[1].YAML) != 1 {
		t.Fatalf("YAML attached to the wrong point: %+v %+v", f.Points[0], f.Points[1])
	}
}

func file(points ...*Point) *File {
	f := &File{}
	for _, p := range points {
		if p.Key == "" {
			p.Key = "0|" + p.Desc + "|1"
		}
		f.Points = append(f.Points, p)
	}
	return f
}

func TestVerdict(t *testing.T) {
	ok := func(d string) *Point { return &Point{Desc: d, Status: "ok"} }
	bad := func(d string) *Point { return &Point{Desc: d, Status: "not ok"} }
	run := func(s string) *Point { return &Point{Desc: "(run)", Key: "run", Status: s, Problem: true} }

	// Failed early: the points the reference passed and it never reached count.
	reg, _, _ := verdict(file(run("not ok")), file(ok("a"), ok("b"), run("ok")), false, nil)
	if len(reg) != 3 {
		t.Errorf("early failure: %d regressions, want 3", len(reg))
	}
	// A clean run with fewer points (a *_fail test that passed) is no regression.
	reg, _, _ = verdict(file(run("ok")), file(ok("a"), run("not ok")), false, nil)
	if len(reg) != 0 {
		t.Errorf("clean short run: %d regressions, want 0", len(reg))
	}
	// Both fail the same point: no regression.
	reg, _, _ = verdict(file(bad("a"), run("ok")), file(bad("a"), run("ok")), false, nil)
	if len(reg) != 0 {
		t.Errorf("both fail: %d regressions, want 0", len(reg))
	}
	// Must-pass: every failure counts unless every error item is excused.
	pid := &Point{Desc: "p", Status: "not ok", YAML: []any{map[string]any{"error": "1 error occurred:\n\t* wrong container process ID \"x\"\n\n"}}}
	status := &Point{Desc: "s", Status: "not ok", YAML: []any{map[string]any{"error": "2 errors occurred:\n\t* wrong container process ID \"x\"\n\t* wrong status \"creating\"\n\n"}}}
	re := regexp.MustCompile(`^wrong container process ID`)
	_, must, exc := verdict(file(pid, status, run("ok")), file(bad("p"), bad("s"), run("ok")), true, re)
	if len(must) != 1 || must[0] != status || len(exc) != 1 || exc[0] != pid {
		t.Errorf("must-pass: failing %v, excused %v", must, exc)
	}
}
