// Command tapsum reads the TAP output of the OCI runtime-tools validation
// suite, run once per runtime, and prints the results side by side.
//
//	tapsum [flags] NAME=DIR NAME=DIR
//
// Each DIR holds, per test file T (validation/T/T.t): T.tap (stdout), T.err
// (stderr), T.rc (exit status) and optionally T.secs (wall time). The first
// NAME is the runtime under test (berth), the second the reference (runc).
//
// Besides the ok / not ok / # SKIP lines, tapsum reads the diagnostics,
// because runtime-tools v0.9.0 does not always put its verdict on a test line:
//   - the hook tests (prestart, poststart, poststop, *_fail, ...) print
//     "1..0" and report an error only in a YAML block outside any test point;
//   - the *_fail tests report success by printing nothing and exiting 0, and
//     failure through util.Fatal (stderr, exit status 1);
//   - a file may hold several TAP streams, each with its own plan.
//
// So each file gets one extra, synthetic test point, "(run)", which is ok
// only when the file exited 0 within its timeout, every stream's plan
// matches its test points, there was no "Bail out!", and no YAML block
// outside a test point carries a non-empty "error". A file that printed
// nothing at all is ok only if it is a *_fail test (the runtime refused
// its config, as it should): any other test prints at least a plan, so a
// silent exit 0 means its container's program never reported (berth's
// process_rlimits did that when the program died under its RLIMIT_AS).
//
// Exit status: 0 when the runtime under test passes every point the
// reference passes and every point of the -must-pass files; 1 otherwise;
// 2 on bad usage or unreadable input.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Point is one test point, read from a TAP line or synthesized.
type Point struct {
	Stream  int
	Num     int
	Desc    string
	Status  string // "ok", "not ok" or "skip"
	Reason  string // the # SKIP / # TODO text
	Diags   []string
	YAML    []any // decoded JSON (tap-go writes YAML as JSON), or raw text
	Key     string
	Problem bool // the synthetic "(run)" point
}

// File is the result of one .t executable.
type File struct {
	Name     string
	Points   []*Point
	RC       int
	Secs     string
	Stderr   string
	Problems []string
	Notes    []any // YAML blocks outside any test point without an error
}

type stream struct {
	plan    int // -1: none seen
	skipAll string
	count   int
}

var (
	reTest  = regexp.MustCompile(`^(not ok|ok)\b\s*(\d+)?\s*(.*)$`)
	rePlan  = regexp.MustCompile(`^1\.\.(\d+)\s*(?:#\s*(.*))?$`)
	reDir   = regexp.MustCompile(`(?i)^(.*?)\s*#\s*(skip|todo)\S*\s*(.*)$`)
	reUUID  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reTmp   = regexp.MustCompile(`/\S*ocitest\d+`)
	timeout = flag.Int("timeout", 0, "the per-file timeout the runner used, in seconds (for messages)")
)

func normalize(s string) string {
	s = reUUID.ReplaceAllString(s, "<id>")
	return reTmp.ReplaceAllString(s, "<bundle>")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// parse reads one test file's results from dir.
func parse(dir, name string) (*File, error) {
	f := &File{Name: name, RC: -1}
	tap, err := os.ReadFile(filepath.Join(dir, name+".tap"))
	if err != nil {
		return nil, err
	}
	if rc := strings.TrimSpace(readFile(filepath.Join(dir, name+".rc"))); rc != "" {
		f.RC, _ = strconv.Atoi(rc)
	}
	f.Secs = strings.TrimSpace(readFile(filepath.Join(dir, name+".secs")))
	f.Stderr = readFile(filepath.Join(dir, name+".err"))

	var streams []*stream
	cur := func() *stream {
		if len(streams) == 0 {
			streams = append(streams, &stream{plan: -1})
		}
		return streams[len(streams)-1]
	}
	var last *Point     // the last test point of the current stream
	lastHasYAML := true // whether a YAML block already follows last
	var pending []any   // YAML that belongs to the next test point
	seen := map[string]int{}
	sawOutput := false

	sc := bufio.NewScanner(strings.NewReader(string(tap)))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		sawOutput = true
		switch {
		case strings.HasPrefix(l, "TAP version"):
			streams = append(streams, &stream{plan: -1})
			last, lastHasYAML = nil, true
		case t == "---" && strings.HasPrefix(l, " "):
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "..."; i++ {
				body = append(body, lines[i])
			}
			y := decodeYAML(strings.Join(body, "\n"))
			switch {
			case isInsideValidate(y):
				// util.RuntimeInsideValidate prints the container's
				// output before the test line it belongs to.
				pending = append(pending, y)
			case last != nil && !lastHasYAML:
				last.YAML = append(last.YAML, y)
				lastHasYAML = true
			default:
				if e := yamlError(y); e != "" {
					f.Problems = append(f.Problems, "error reported outside a test point: "+e)
				} else {
					f.Notes = append(f.Notes, y)
				}
			}
		case strings.HasPrefix(t, "Bail out!"):
			f.Problems = append(f.Problems, t)
		case strings.HasPrefix(l, "#"):
			if last != nil {
				last.Diags = append(last.Diags, strings.TrimSpace(strings.TrimPrefix(l, "#")))
			}
		case rePlan.MatchString(l):
			m := rePlan.FindStringSubmatch(l)
			s := cur()
			s.plan, _ = strconv.Atoi(m[1])
			if d := strings.TrimSpace(m[2]); strings.HasPrefix(strings.ToLower(d), "skip") {
				s.skipAll = d
			}
		case reTest.MatchString(l):
			m := reTest.FindStringSubmatch(l)
			s := cur()
			s.count++
			p := &Point{Stream: len(streams) - 1, Status: m[1]}
			p.Num, _ = strconv.Atoi(m[2])
			rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(m[3]), "-"))
			if d := reDir.FindStringSubmatch(rest); d != nil {
				rest, p.Reason = strings.TrimSpace(d[1]), strings.TrimSpace(d[3])
				if strings.EqualFold(d[2], "skip") {
					p.Status = "skip"
				} else if p.Status == "ok" {
					p.Status = "ok" // a passing TODO is still a pass
				}
				if rest == "" {
					rest = p.Reason
				}
			}
			p.Desc = rest
			base := fmt.Sprintf("%d|%s", p.Stream, normalize(rest))
			seen[base]++
			p.Key = fmt.Sprintf("%s|%d", base, seen[base])
			if len(pending) > 0 {
				p.YAML, pending = pending, nil
			}
			f.Points = append(f.Points, p)
			last, lastHasYAML = p, false
		default:
			// Not TAP (a runtime-tools helper wrote to stdout): ignore.
		}
	}

	for i, s := range streams {
		switch {
		case s.plan < 0 && s.count > 0:
			f.Problems = append(f.Problems, fmt.Sprintf("TAP stream %d has %d test points but no plan", i+1, s.count))
		case s.plan < 0:
			f.Problems = append(f.Problems, fmt.Sprintf("TAP stream %d has no plan and no test points", i+1))
		case s.plan != s.count:
			f.Problems = append(f.Problems, fmt.Sprintf("TAP stream %d planned 1..%d but ran %d test points", i+1, s.plan, s.count))
		}
	}
	switch {
	case f.RC == 124 || f.RC == 137:
		msg := "timed out"
		if *timeout > 0 {
			msg = fmt.Sprintf("timed out after %ds", *timeout)
		}
		f.Problems = append(f.Problems, msg)
	case f.RC == 125:
		f.Problems = append(f.Problems, "not run: the runner's time budget was used up")
	case f.RC != 0:
		f.Problems = append(f.Problems, fmt.Sprintf("exit status %d", f.RC))
	}
	if !sawOutput && f.RC == 0 && !strings.HasSuffix(name, "_fail") {
		f.Problems = append(f.Problems, "no TAP output at all: only a *_fail test passes by its exit status alone")
	}

	run := &Point{Stream: -1, Desc: "(run)", Key: "run", Status: "ok", Problem: true}
	if len(f.Problems) > 0 {
		run.Status = "not ok"
		run.Diags = append(run.Diags, f.Problems...)
	}
	f.Points = append(f.Points, run)
	return f, nil
}

func decodeYAML(s string) any {
	var v any
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &v); err == nil {
		return v
	}
	return strings.TrimSpace(s)
}

func isInsideValidate(y any) bool {
	m, ok := y.(map[string]any)
	if !ok {
		return false
	}
	if _, ok := m["stdout"]; !ok {
		return false
	}
	for k := range m {
		if k != "stdout" && k != "stderr" && k != "error" {
			return false
		}
	}
	return true
}

func yamlError(y any) string {
	m, ok := y.(map[string]any)
	if !ok {
		return ""
	}
	e, _ := m["error"].(string)
	return strings.TrimSpace(e)
}

// Run is one runtime's results.
type Run struct {
	Name  string
	Files map[string]*File
}

func load(spec string) (*Run, error) {
	name, dir, ok := strings.Cut(spec, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want NAME=DIR", spec)
	}
	r := &Run{Name: name, Files: map[string]*File{}}
	taps, err := filepath.Glob(filepath.Join(dir, "*.tap"))
	if err != nil {
		return nil, err
	}
	if len(taps) == 0 {
		return nil, fmt.Errorf("%s: no .tap files", dir)
	}
	for _, t := range taps {
		n := strings.TrimSuffix(filepath.Base(t), ".tap")
		f, err := parse(dir, n)
		if err != nil {
			return nil, err
		}
		r.Files[n] = f
	}
	return r, nil
}

type counts struct{ ok, notok, skip int }

func count(f *File) (c counts) {
	if f == nil {
		return
	}
	for _, p := range f.Points {
		switch p.Status {
		case "ok":
			c.ok++
		case "skip":
			c.skip++
		default:
			c.notok++
		}
	}
	return
}

func byKey(f *File) map[string]*Point {
	m := map[string]*Point{}
	if f != nil {
		for _, p := range f.Points {
			m[p.Key] = p
		}
	}
	return m
}

// verdict compares one file. regressions: points the reference passes and
// the runtime under test does not (fails, skips, or never reaches because
// it failed earlier); mustFail: failing points of a must-pass file.
func verdict(a, b *File, mustPass bool, excuse *regexp.Regexp) (regressions, mustFail, excused []*Point) {
	if a == nil {
		return nil, nil, nil
	}
	ak, bk := byKey(a), byKey(b)
	failed := false
	for _, p := range a.Points {
		if p.Status == "not ok" {
			failed = true
		}
		if p.Status == "ok" {
			continue
		}
		if mustPass {
			if p.Status == "not ok" {
				if excusable(p, excuse) {
					excused = append(excused, p)
				} else {
					mustFail = append(mustFail, p)
				}
			}
			continue
		}
		if q := bk[p.Key]; q != nil && q.Status == "ok" {
			regressions = append(regressions, p)
		}
	}
	if mustPass || !failed || b == nil {
		return
	}
	// The runtime under test failed somewhere in this file: a point the
	// reference passes that it never reached is lost too. (A clean run that
	// prints fewer points, as the *_fail tests do when they pass, is not.)
	refClean := true
	for _, q := range b.Points {
		if q.Status == "not ok" {
			refClean = false
		}
		if q.Status == "ok" && ak[q.Key] == nil {
			regressions = append(regressions, &Point{Key: q.Key, Desc: q.Desc + " (not reached)", Status: "missing", Stream: q.Stream, Num: q.Num})
		}
	}
	if len(regressions) == 0 && refClean {
		// The reference passed the whole file; the failure is new.
		for _, p := range a.Points {
			if p.Status == "not ok" {
				regressions = append(regressions, p)
			}
		}
	}
	return
}

var reErrCount = regexp.MustCompile(`^\d+ errors? occurred:$`)

// excusable reports whether every error item in p's diagnostics (the lines
// of the YAML "error" values; go-multierror lists them as "* ...") matches
// re. A point without such items is never excused.
func excusable(p *Point, re *regexp.Regexp) bool {
	if re == nil {
		return false
	}
	n := 0
	for _, y := range p.YAML {
		for _, l := range strings.Split(yamlError(y), "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
			if l == "" || reErrCount.MatchString(l) {
				continue
			}
			if !re.MatchString(l) {
				return false
			}
			n++
		}
	}
	return n > 0
}

// excuses is the repeatable -excuse FILE=REGEX flag.
type excuses map[string]*regexp.Regexp

func (e excuses) String() string { return "" }
func (e excuses) Set(v string) error {
	file, expr, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want FILE=REGEX")
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return err
	}
	e[strings.TrimSuffix(file, ".t")] = re
	return nil
}

func main() {
	mustPassFlag := flag.String("must-pass", "", "comma-separated test files (e.g. delete,hooks_stdin) every point of which the first runtime must pass")
	markdown := flag.String("markdown", "", "also write the table as Markdown to this file")
	details := flag.String("details", "first", "failure details to print: first (the runtime under test), all, none")
	list := flag.Bool("list-failing", false, "only print the names of the files where the first runtime fails (as the exit status would count them), one a line")
	exc := excuses{}
	flag.Var(exc, "excuse", "FILE=REGEX: in must-pass FILE, a failing point whose every error item matches REGEX does not count (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tapsum [flags] NAME=DIR NAME=DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	a, err := load(flag.Arg(0))
	if err == nil {
		var b *Run
		b, err = load(flag.Arg(1))
		if err == nil {
			if *list {
				var sb strings.Builder
				report(&sb, a, b, *mustPassFlag, exc, "", "none")
				for _, l := range strings.Split(sb.String(), "\n") {
					if rest, ok := strings.CutPrefix(l, "RESULT: FAIL: "); ok {
						_, names, _ := strings.Cut(rest, ": ")
						for _, n := range strings.Fields(names) {
							fmt.Println(n)
						}
					}
				}
				os.Exit(0)
			}
			os.Exit(report(os.Stdout, a, b, *mustPassFlag, exc, *markdown, *details))
		}
	}
	fmt.Fprintln(os.Stderr, "tapsum:", err)
	os.Exit(2)
}

func report(w io.Writer, a, b *Run, mustPassList string, exc excuses, markdown, details string) int {
	must := map[string]bool{}
	for _, m := range strings.Split(mustPassList, ",") {
		if m = strings.TrimSpace(m); m != "" {
			must[strings.TrimSuffix(m, ".t")] = true
		}
	}
	names := map[string]bool{}
	for n := range a.Files {
		names[n] = true
	}
	for n := range b.Files {
		names[n] = true
	}
	var order []string
	for n := range names {
		order = append(order, n)
	}
	sort.Strings(order)
	for m := range must {
		if !names[m] {
			fmt.Fprintf(w, "(must-pass test %s was not run)\n", m)
		}
	}

	type row struct {
		name            string
		ca, cb          counts
		mark            string
		reg, mustF, exc []*Point
	}
	var rows []row
	var ta, tb counts
	nReg, nMust := 0, 0
	for _, n := range order {
		fa, fb := a.Files[n], b.Files[n]
		r := row{name: n, ca: count(fa), cb: count(fb)}
		if fa == nil {
			r.reg = []*Point{{Key: "run", Desc: "(no results for " + a.Name + ")", Status: "missing"}}
		} else {
			r.reg, r.mustF, r.exc = verdict(fa, fb, must[n], exc[n])
		}
		switch {
		case len(r.mustF) > 0:
			r.mark = "FAIL (must pass)"
		case len(r.reg) > 0:
			r.mark = fmt.Sprintf("FAIL (%d where %s passes)", len(r.reg), b.Name)
		case must[n] && len(r.exc) > 0:
			r.mark = fmt.Sprintf("pass (must pass; %d excused)", len(r.exc))
		case must[n]:
			r.mark = "pass (must pass)"
		case r.ca.notok > 0:
			r.mark = "fails in both"
		}
		nReg += len(r.reg)
		nMust += len(r.mustF)
		ta.ok, ta.notok, ta.skip = ta.ok+r.ca.ok, ta.notok+r.ca.notok, ta.skip+r.ca.skip
		tb.ok, tb.notok, tb.skip = tb.ok+r.cb.ok, tb.notok+r.cb.notok, tb.skip+r.cb.skip
		rows = append(rows, r)
	}

	hdr := func(n string) string { return fmt.Sprintf("%-20s", n+"  ok/not ok/skip") }
	fmt.Fprintf(w, "%-31s | %s | %s | %s\n", "test", hdr(a.Name), hdr(b.Name), "verdict")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 31+3+20+3+20+3+28))
	cell := func(c counts) string { return fmt.Sprintf("%5d %7d %6d", c.ok, c.notok, c.skip) }
	for _, r := range rows {
		fmt.Fprintf(w, "%-31s | %-20s | %-20s | %s\n", r.name, cell(r.ca), cell(r.cb), r.mark)
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 31+3+20+3+20+3+28))
	fmt.Fprintf(w, "%-31s | %-20s | %-20s |\n", fmt.Sprintf("TOTAL (%d files)", len(rows)), cell(ta), cell(tb))
	fmt.Fprintf(w, "(each file also counts one \"(run)\" point: exit 0, plans kept, no error outside a test point)\n")

	if markdown != "" {
		var sb strings.Builder
		fmt.Fprintf(&sb, "| test | %s ok | %s not ok | %s skip | %s ok | %s not ok | %s skip | verdict |\n", a.Name, a.Name, a.Name, b.Name, b.Name, b.Name)
		sb.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, r := range rows {
			fmt.Fprintf(&sb, "| %s | %d | %d | %d | %d | %d | %d | %s |\n", r.name, r.ca.ok, r.ca.notok, r.ca.skip, r.cb.ok, r.cb.notok, r.cb.skip, r.mark)
		}
		fmt.Fprintf(&sb, "| **total** | %d | %d | %d | %d | %d | %d | |\n", ta.ok, ta.notok, ta.skip, tb.ok, tb.notok, tb.skip)
		if err := os.WriteFile(markdown, []byte(sb.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tapsum:", err)
			return 2
		}
	}

	if details != "none" {
		runs := []*Run{a}
		if details == "all" {
			runs = append(runs, b)
		}
		for _, run := range runs {
			other := b
			if run == b {
				other = a
			}
			fmt.Fprintf(w, "\n===== %s: failing test points =====\n", run.Name)
			for _, n := range order {
				f := run.Files[n]
				if f == nil {
					continue
				}
				ok := byKey(other.Files[n])
				var bad []*Point
				for _, p := range f.Points {
					if p.Status == "not ok" {
						bad = append(bad, p)
					}
				}
				if len(bad) == 0 {
					continue
				}
				fmt.Fprintf(w, "\n--- %s (%s %s)\n", n, run.Name, "exit "+strconv.Itoa(f.RC)+secs(f.Secs))
				for _, p := range bad {
					tag := other.Name + ": not run"
					if q := ok[p.Key]; q != nil {
						tag = other.Name + ": " + q.Status
					}
					if p.Problem {
						fmt.Fprintf(w, "  not ok (run) [%s]\n", tag)
					} else {
						fmt.Fprintf(w, "  not ok %d - %s [%s]\n", p.Num, p.Desc, tag)
					}
					for _, d := range p.Diags {
						fmt.Fprintf(w, "      # %s\n", clip(d, 400))
					}
					for _, y := range p.YAML {
						printYAML(w, y)
					}
					if p.Problem && strings.TrimSpace(f.Stderr) != "" {
						fmt.Fprintf(w, "      stderr: %s\n", indent(clip(strings.TrimSpace(f.Stderr), 1500)))
					}
				}
			}
		}
	}

	fmt.Fprintf(w, "\n%s vs %s: %d test points %s fails where %s passes; %d failing points in must-pass files (%s)\n",
		a.Name, b.Name, nReg, a.Name, b.Name, nMust, mustPassList)
	for _, r := range rows {
		for _, p := range r.exc {
			fmt.Fprintf(w, "  excused    %s: %s %s (every error matches -excuse %s=%s)\n", r.name, p.Status, p.Desc, r.name, exc[r.name])
		}
	}
	if nReg > 0 || nMust > 0 {
		for _, r := range rows {
			for _, p := range r.mustF {
				fmt.Fprintf(w, "  MUST PASS  %s: %s %s\n", r.name, p.Status, p.Desc)
			}
			for i, p := range r.reg {
				if i == 5 {
					fmt.Fprintf(w, "  REGRESSION %s: … and %d more\n", r.name, len(r.reg)-i)
					break
				}
				fmt.Fprintf(w, "  REGRESSION %s: %s %s\n", r.name, p.Status, p.Desc)
			}
		}
		var files []string
		for _, r := range rows {
			if len(r.reg) > 0 || len(r.mustF) > 0 {
				files = append(files, r.name)
			}
		}
		fmt.Fprintf(w, "\nRESULT: FAIL: %s does not pass what %s passes (or a must-pass test) in %d files: %s\n", a.Name, b.Name, len(files), strings.Join(files, " "))
		return 1
	}
	fmt.Fprintf(w, "\nRESULT: PASS: %s passes every test point %s passes and every must-pass test\n", a.Name, b.Name)
	return 0
}

func secs(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s + "s"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " …"
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n              ") }

// printYAML prints a diagnostic block compactly: one key a line; the
// container's nested TAP output (key "stdout") is reduced to its failures.
func printYAML(w io.Writer, y any) {
	m, ok := y.(map[string]any)
	if !ok {
		fmt.Fprintf(w, "      | %s\n", indent(clip(fmt.Sprint(y), 800)))
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		s, isStr := v.(string)
		if !isStr {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		if k == "stdout" && strings.Contains(s, "TAP version") {
			var fails []string
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, "not ok") {
					fails = append(fails, l)
				}
			}
			if len(fails) == 0 {
				continue
			}
			s = "nested TAP failures:\n" + strings.Join(fails, "\n")
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		fmt.Fprintf(w, "      %s: %s\n", k, indent(clip(s, 1200)))
	}
}
