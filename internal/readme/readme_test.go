package readme

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoRoot is the module root, two directories up.
var repoRoot = filepath.Join("..", "..")

// firstGoBlock returns the body of the first ```go fence in markdown.
func firstGoBlock(t *testing.T, markdown string) string {
	t.Helper()
	_, rest, ok := strings.Cut(markdown, "\n```go\n")
	require.True(t, ok, "README.md has no ```go block")
	code, _, ok := strings.Cut(rest, "\n```\n")
	require.True(t, ok, "README.md's first ```go block is not closed")
	return code + "\n"
}

func readmeProgram(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	return firstGoBlock(t, string(b))
}

// The README's first channel is a whole program that builds against this
// module as it stands (a temporary module with a replace directive, no
// network), and go vet finds nothing in it.
func TestReadmeProgramBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the go command is needed to build the README's program")
		}
		t.Skip("no go command")
	}
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(readmeProgram(t)), 0o644))
	gomod := "module readmeprogram\n\ngo 1.26\n\nrequire github.com/pyre-go/pyre v0.0.0\n\nreplace github.com/pyre-go/pyre => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	for _, args := range [][]string{
		{"build", "-o", filepath.Join(dir, "readmeprogram"), "."},
		{"vet", "."},
	} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		// The module cache already holds every dependency of this module.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s on the README's program:\n%s", strings.Join(args, " "), out)
	}
}

// The README's server bounds how long a client may take to send its request
// headers: a slowloris client cannot hold its connections open. It builds
// an http.Server with ReadHeaderTimeout and never calls net/http's
// package-level ListenAndServe/Serve helpers, whose server has no timeouts.
func TestReadmeServerHasTimeouts(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "README.md", readmeProgram(t), parser.ParseComments)
	require.NoError(t, err, "the README's first Go block must be a whole file")
	fields := map[string]bool{}
	var servers int
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if isSel(n.Type, "http", "Server") {
				servers++
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if id, ok := kv.Key.(*ast.Ident); ok {
							fields[id.Name] = true
						}
					}
				}
			}
		case *ast.CallExpr:
			for _, fn := range []string{"ListenAndServe", "ListenAndServeTLS", "Serve", "ServeTLS"} {
				assert.False(t, isSel(n.Fun, "http", fn), "the README calls http.%s: its server has no timeouts", fn)
			}
		}
		return true
	})
	require.Equal(t, 1, servers, "the README's program builds one http.Server")
	assert.True(t, fields["ReadHeaderTimeout"], "the README's http.Server sets no ReadHeaderTimeout")
	assert.True(t, fields["IdleTimeout"], "the README's http.Server sets no IdleTimeout")
}

// channel.Example runs the README's channel: the Room type and its methods
// are the same code in both places.
func TestReadmeMatchesExample(t *testing.T) {
	readme, err := parser.ParseFile(token.NewFileSet(), "README.md", readmeProgram(t), 0)
	require.NoError(t, err)
	example, err := parser.ParseFile(token.NewFileSet(), "example_test.go", mustRead(t, filepath.Join(repoRoot, "channel", "example_test.go")), 0)
	require.NoError(t, err)
	want := decls(t, readme)
	require.Contains(t, want, "Room")
	for _, name := range []string{"Room", "Room.Join", "Room.HandleIn"} {
		require.Contains(t, want, name)
		assert.Equal(t, want[name], decls(t, example)[name], "%s differs between README.md and channel/example_test.go", name)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// decls prints f's type and method declarations (without doc comments),
// keyed "Type" and "Type.Method".
func decls(t *testing.T, f *ast.File) map[string]string {
	t.Helper()
	out := map[string]string{}
	show := func(n ast.Node) string {
		var b bytes.Buffer
		require.NoError(t, printer.Fprint(&b, token.NewFileSet(), n))
		return b.String()
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					out[ts.Name.Name] = show(ts)
				}
			}
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) != 1 {
				continue
			}
			recv := d.Recv.List[0].Type
			if st, ok := recv.(*ast.StarExpr); ok {
				recv = st.X
			}
			if id, ok := recv.(*ast.Ident); ok {
				fd := *d
				fd.Doc = nil
				out[id.Name+"."+d.Name.Name] = show(&fd)
			}
		}
	}
	return out
}

// isSel reports whether e is pkg.name.
func isSel(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}
