package image_test

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"io"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerFiles reads a layer's regular files by path.
func layerFiles(t testing.TB, layer v1.Layer) map[string][]byte {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "/")] = body
		}
	}
}

// builtPackage is the Go package a binary in one of the layers was built from.
func builtPackage(t testing.TB, layers []v1.Layer, binary string) string {
	t.Helper()
	var body []byte
	for _, layer := range layers {
		if b := layerFiles(t, layer)[strings.TrimPrefix(binary, "/")]; b != nil {
			body = b
		}
	}
	if body == nil {
		t.Fatalf("binary %s not in the image", binary)
	}
	info, err := buildinfo.Read(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", binary, err)
	}
	return info.Path
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
