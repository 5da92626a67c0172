package image_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"fulfillment/infra/image"
)

// One ko build of every entry point serves every test of the package (it
// is most of their time): the first test to ask builds, TestMain removes it.
var (
	buildOnce sync.Once
	shared    *built
	sharedErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		os.RemoveAll(shared.layout)
		os.RemoveAll(shared.kocache)
	}
	os.Exit(code)
}

// built is one ko build into an OCI layout.
type built struct {
	root, ko, kocache, base string
	paths                   []string // every ./functions/<name>/cmd/<entry point>
	layout                  string   // the OCI layout ko wrote
	refs                    []string // what ko printed: <layout>@sha256:...
}

// builtImages builds every function's images once per test binary.
func builtImages(t testing.TB) *built {
	t.Helper()
	buildOnce.Do(func() { shared, sharedErr = buildAll() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func buildAll() (*built, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	ko, err := findKo(root)
	if err != nil {
		return nil, err
	}
	dirs, err := filepath.Glob(filepath.Join(root, "functions", "*", "cmd", "*"))
	if err != nil || len(dirs) == 0 {
		return nil, fmt.Errorf("no entry points under functions/*/cmd (%v)", err)
	}
	b := &built{root: root, ko: ko}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		b.paths = append(b.paths, "./"+filepath.ToSlash(rel))
	}
	if b.kocache, err = os.MkdirTemp("", "fulfillment-kocache"); err != nil {
		return nil, err
	}
	base, err := image.WriteToCache(b.kocache)
	if err != nil {
		return nil, err
	}
	b.base = base.String()
	all, err := b.build(b.paths...)
	if err != nil {
		return nil, err
	}
	b.layout, b.refs = all.layout, all.refs
	return b, nil
}

// build runs ko on paths into a new OCI layout (the caller removes it).
func (b *built) build(paths ...string) (*built, error) {
	// ko names images after the layout's path, which must be lowercase.
	out, err := os.MkdirTemp("", "fulfillment-images")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.ko, append([]string{"build", "--push=false", "--bare", "--sbom=none", "--oci-layout-path=" + out}, paths...)...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "KOCACHE="+b.kocache, "KO_DEFAULTBASEIMAGE="+b.base, "KO_DOCKER_REPO=fulfillment.invalid/functions")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(out)
		return nil, fmt.Errorf("ko build: %v\n%s", err, stderr.String())
	}
	refs := strings.Fields(stdout.String())
	if len(refs) != len(paths) {
		os.RemoveAll(out)
		return nil, fmt.Errorf("ko printed %d images for %d entry points:\n%s", len(refs), len(paths), stdout.String())
	}
	return &built{layout: out, refs: refs}, nil
}

func findKo(root string) (string, error) {
	if path := filepath.Join(root, "bin", "ko"); fileExists(path) {
		return path, nil
	}
	path, err := exec.LookPath("ko")
	if err != nil {
		return "", fmt.Errorf("ko not found in ./bin or on PATH: run `make tools`")
	}
	return path, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
