package catalog_test

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The documented catalog (docs/events.md) must name every event type, topic
// and source this package declares, and nothing else: a new constant without
// its row, or a row left behind by a removed constant, fails here.

// eventType is the shape of every event type: versioned, ".v1" and on.
var eventType = regexp.MustCompile(`^fulfillment\.[a-z0-9_.]+\.v[0-9]+$`)

// declared is what the catalog package's Go source declares, by kind:
// constant value -> constant name.
type declared struct {
	types, topics, sources map[string]string
}

// parseCatalog reads the non-test Go files of this package with go/parser and
// sorts its string constants: Topic* are topics, Source* sources, and any
// value starting "fulfillment." an event type (which must then be versioned).
func parseCatalog(t *testing.T) declared {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	d := declared{types: map[string]string{}, topics: map[string]string{}, sources: map[string]string{}}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					isTopic := strings.HasPrefix(id.Name, "Topic")
					isSource := strings.HasPrefix(id.Name, "Source")
					if i >= len(vs.Values) {
						if isTopic || isSource {
							t.Errorf("%s: constant %s has no value of its own", fset.Position(id.Pos()), id.Name)
						}
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						if isTopic || isSource {
							t.Errorf("%s: constant %s is not a string literal; this test cannot read it", fset.Position(id.Pos()), id.Name)
						}
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case isTopic:
						d.topics[v] = id.Name
					case isSource:
						d.sources[v] = id.Name
					case strings.HasPrefix(v, "fulfillment."):
						if !eventType.MatchString(v) {
							t.Errorf("%s: event type %s = %q is not of the form fulfillment.<name>.v<N>", fset.Position(id.Pos()), id.Name, v)
						}
						d.types[v] = id.Name
					}
				}
			}
		}
	}
	if len(d.types) == 0 || len(d.topics) == 0 || len(d.sources) == 0 {
		t.Fatalf("found %d event types, %d topics, %d sources in the catalog's source: the parser is wrong", len(d.types), len(d.topics), len(d.sources))
	}
	return d
}

// table is one markdown table of docs/events.md: the backticked first cell
// of each row, and the rows' other cells.
type table struct {
	line  map[string]int      // first cell -> line number
	cells map[string][]string // first cell -> every cell
}

// parseTables reads every markdown table of a document whose header's first
// cell is one of heads, keyed by that header. Every data row of such a table
// must have a backticked first cell, so no row escapes the check.
func parseTables(t *testing.T, path string, heads ...string) map[string]table {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]table{}
	code := regexp.MustCompile("^`([^`]+)`$")
	var current string // header of the table being read, "" outside one
	header := false    // the next row is the |---| separator
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			current = ""
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case current == "" && slices.Contains(heads, cells[0]):
			current, header = cells[0], true
			if _, dup := tables[current]; dup {
				t.Errorf("%s:%d: a second table headed %q", path, n, current)
			}
			tables[current] = table{line: map[string]int{}, cells: map[string][]string{}}
		case current == "":
			// some other table
		case header:
			header = false
		default:
			m := code.FindStringSubmatch(cells[0])
			if m == nil {
				t.Errorf("%s:%d: first cell %q of the %q table is not a `backticked` name", path, n, cells[0], current)
				continue
			}
			if prev, dup := tables[current].line[m[1]]; dup {
				t.Errorf("%s:%d: %s listed twice (also line %d)", path, n, m[1], prev)
			}
			tables[current].line[m[1]] = n
			tables[current].cells[m[1]] = cells
		}
	}
	for _, h := range heads {
		if _, ok := tables[h]; !ok {
			t.Fatalf("%s has no table whose first column is %q", path, h)
		}
	}
	return tables
}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the catalog package")
		}
		dir = parent
	}
}

func TestEventsDocListsEveryCatalogTypeTopicAndSource(t *testing.T) {
	t.Parallel()
	d := parseCatalog(t)
	doc := filepath.Join(repoRoot(t), "docs", "events.md")
	tables := parseTables(t, doc, "type", "topic", "source")

	compare := func(kind string, code map[string]string, tab table) {
		t.Helper()
		for _, v := range sortedKeys(code) {
			if _, ok := tab.line[v]; !ok {
				t.Errorf("%s %s = %q is declared in shared/domain/catalog but has no row in docs/events.md's %q table", kind, code[v], v, kind)
			}
		}
		for _, v := range sortedKeys(tab.line) {
			if _, ok := code[v]; !ok {
				t.Errorf("docs/events.md:%d lists %s %q, which shared/domain/catalog does not declare", tab.line[v], kind, v)
			}
		}
	}
	compare("type", d.types, tables["type"])
	compare("topic", d.topics, tables["topic"])
	compare("source", d.sources, tables["source"])

	// Each event type's second column names the topic that carries it.
	for typ, cells := range tables["type"].cells {
		if len(cells) < 2 {
			t.Errorf("docs/events.md:%d: %s has no topic column", tables["type"].line[typ], typ)
			continue
		}
		topic := strings.Trim(cells[1], "`")
		if _, ok := d.topics[topic]; !ok {
			t.Errorf("docs/events.md:%d: %s is carried on %q, which is not a catalog topic", tables["type"].line[typ], typ, topic)
		}
	}
}

func TestREADMEIsAtMost150Lines(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(raw, []byte("\n"))
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		lines++
	}
	if lines > 150 {
		t.Errorf("README.md has %d lines; keep it at most 150 and move detail into docs/", lines)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
