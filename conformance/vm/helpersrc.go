//go:build ignore

// Command helpersrc writes the source files of the network tests' helper
// program into a directory: run.sh builds that program on the host, because
// the test VM has no Go toolchain to run the tests' own `go build`.
//
//	go run conformance/vm/helpersrc.go integration/ OUTDIR
//
// The tests' helper() writes its files from a map literal whose keys are
// file names, one of them "go.mod", and whose values are string literals or
// string constants of the package. This finds that literal in the
// package's test files and writes each file out, so the build on the host
// follows any change of the helper without a copy here.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: helpersrc PACKAGE-DIR OUT-DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "helpersrc:", err)
		os.Exit(1)
	}
}

func run(pkgDir, outDir string) error {
	names, err := filepath.Glob(filepath.Join(pkgDir, "*_test.go"))
	if err != nil {
		return err
	}
	consts := map[string]string{} // string constants of the package
	var lits []*ast.CompositeLit
	for _, name := range names {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i >= len(n.Values) {
						break
					}
					if b, ok := n.Values[i].(*ast.BasicLit); ok && b.Kind == token.STRING {
						if s, err := strconv.Unquote(b.Value); err == nil {
							consts[id.Name] = s
						}
					}
				}
			case *ast.CompositeLit:
				lits = append(lits, n)
			}
			return true
		})
	}
	str := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			return s, err == nil && e.Kind == token.STRING
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		}
		return "", false
	}
	for _, l := range lits {
		files := map[string]string{}
		for _, el := range l.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			k, okk := str(kv.Key)
			v, okv := str(kv.Value)
			if okk && okv {
				files[k] = v
			}
		}
		if _, ok := files["go.mod"]; !ok || len(files) != len(l.Elts) {
			continue
		}
		for name, content := range files {
			if filepath.Base(name) != name {
				return fmt.Errorf("file name %q of the helper is not a plain name", name)
			}
			if err := os.WriteFile(filepath.Join(outDir, name), []byte(content), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no map literal of file names (with go.mod) to string contents in %s/*_test.go", pkgDir)
}
