package image_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"fulfillment/infra/image"
)

func TestBaseIsReproducibleAndHoldsOnlyCertificates(t *testing.T) {
	first, err := image.Base()
	if err != nil {
		t.Fatal(err)
	}
	second, err := image.Base()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of the base differ: %s, %s", d1, d2)
	}

	layers, err := first.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("base layers = %d (%v), want 1", len(layers), err)
	}
	files := layerFiles(t, layers[0])
	if len(files) != 1 || files[image.CertFile] == nil {
		t.Fatalf("base files = %v, want only %s", keys(files), image.CertFile)
	}
	roots := 0
	for rest := files[image.CertFile]; ; roots++ {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("root %d: %v", roots, err)
		}
	}
	if roots < 100 {
		t.Fatalf("certificate bundle holds %d roots, want the Mozilla set (>100)", roots)
	}

	cfg, err := first.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Config.User != "65532:65532" {
		t.Fatalf("base config = %s/%s user %q, want linux/amd64 as 65532", cfg.OS, cfg.Architecture, cfg.Config.User)
	}
}

// Every function's image, for both entry points, builds with ko from the
// locally assembled base, with no registry: what CI proves on every run.
func TestEveryFunctionImageBuildsOffline(t *testing.T) {
	ko := koBinary(t)
	root := moduleRoot(t)
	paths := entryPoints(t, root)

	kocache := t.TempDir()
	base, err := image.WriteToCache(kocache)
	if err != nil {
		t.Fatal(err)
	}
	build := func(paths ...string) (layoutDir string, refs []string) {
		// ko names images after the layout's path, which must be lowercase
		// (t.TempDir has the test's name in it).
		out, err := os.MkdirTemp("", "fulfillment-images")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(out) })
		cmd := exec.Command(ko, append([]string{"build", "--push=false", "--bare", "--sbom=none", "--oci-layout-path=" + out}, paths...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "KOCACHE="+kocache, "KO_DEFAULTBASEIMAGE="+base.String(), "KO_DOCKER_REPO=fulfillment.invalid/functions")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ko build: %v\n%s", err, stderr.String())
		}
		refs = strings.Fields(stdout.String())
		if len(refs) != len(paths) {
			t.Fatalf("ko printed %d images for %d entry points:\n%s", len(refs), len(paths), stdout.String())
		}
		return out, refs
	}
	out, refs := build(paths...)

	// ko prints the images in no particular order: each binary's Go build
	// info says which entry point it is.
	built, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	baseLayer := baseLayerDigest(t)
	found := map[string]string{} // entry point => image digest
	for _, ref := range refs {
		img := imageAt(t, built, ref)
		layers, err := img.Layers()
		if err != nil || len(layers) < 2 {
			t.Fatalf("%s: %d layers (%v), want the base plus the binary", ref, len(layers), err)
		}
		if first, _ := layers[0].Digest(); first != baseLayer {
			t.Errorf("%s: first layer %s, want the base's %s", ref, first, baseLayer)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Config.Entrypoint) != 1 || cfg.Config.User != "65532:65532" || !cfg.Created.IsZero() {
			t.Fatalf("%s: entrypoint %v, user %q, created %v; want one binary, 65532, the epoch", ref, cfg.Config.Entrypoint, cfg.Config.User, cfg.Created)
		}
		entry := cfg.Config.Entrypoint[0]
		pkg := builtPackage(t, layers[1:], entry)
		if path.Base(pkg) != path.Base(entry) {
			t.Errorf("%s: entrypoint %s runs package %s", ref, entry, pkg)
		}
		_, digest, _ := strings.Cut(ref, "@")
		found["./"+strings.TrimPrefix(pkg, "fulfillment/")] = digest
	}
	for _, p := range paths {
		if found[p] == "" {
			t.Errorf("no image holds %s (built: %v)", p, found)
		}
	}

	// Reproducible: building one again gives the same digest.
	_, again := build(paths[0])
	if _, digest, _ := strings.Cut(again[0], "@"); digest != found[paths[0]] {
		t.Errorf("%s built twice: %s, then %s", paths[0], found[paths[0]], digest)
	}
}

func baseLayerDigest(t *testing.T) v1.Hash {
	t.Helper()
	base, err := image.Base()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func imageAt(t *testing.T, built layout.Path, ref string) v1.Image {
	t.Helper()
	_, digest, ok := strings.Cut(ref, "@")
	if !ok {
		t.Fatalf("ko printed %q, want a digest reference", ref)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := built.Image(h)
	if err != nil {
		t.Fatalf("image %s not in the layout: %v", digest, err)
	}
	return img
}

// entryPoints lists ./functions/<name>/cmd/{gcp,knative} for every function.
func entryPoints(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "functions", "*", "cmd", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no entry points under functions/*/cmd (%v)", err)
	}
	var paths []string
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		paths = append(paths, "./"+filepath.ToSlash(rel))
	}
	return paths
}

func koBinary(t *testing.T) string {
	t.Helper()
	if path, err := filepath.Abs(filepath.Join(moduleRoot(t), "bin", "ko")); err == nil {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	path, err := exec.LookPath("ko")
	if err != nil {
		t.Fatal("ko not found in ./bin or on PATH: run `make tools`")
	}
	return path
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
