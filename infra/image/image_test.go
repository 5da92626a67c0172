package image_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"fulfillment/infra/image"
	"fulfillment/shared/runtime/runtimeenv"
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
	if !slices.Contains(cfg.Config.Env, "GODEBUG="+runtimeenv.GoDebug) {
		t.Fatalf("base env = %v, want GODEBUG=%s (read by the runtime only at start)", cfg.Config.Env, runtimeenv.GoDebug)
	}
}

// Every function's image, for both entry points, builds with ko from the
// locally assembled base, with no registry: what CI proves on every run.
func TestEveryFunctionImageBuildsOffline(t *testing.T) {
	b := builtImages(t)
	out, refs, paths := b.layout, b.refs, b.paths

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
		if !slices.Contains(cfg.Config.Env, "GODEBUG="+runtimeenv.GoDebug) {
			t.Errorf("%s: env %v, want the base's GODEBUG=%s", ref, cfg.Config.Env, runtimeenv.GoDebug)
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
	again, err := b.build(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(again.layout)
	if _, digest, _ := strings.Cut(again.refs[0], "@"); digest != found[paths[0]] {
		t.Errorf("%s built twice: %s, then %s", paths[0], found[paths[0]], digest)
	}
}

func baseLayerDigest(t testing.TB) v1.Hash {
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

func imageAt(t testing.TB, built layout.Path, ref string) v1.Image {
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
