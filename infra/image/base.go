// Package image assembles the base image every function's container is built
// on: the Mozilla root certificates and nothing else (the binaries are static),
// so ko can build every image with no registry in reach. The certificates
// come from a pinned Go module, so the base, and with it every image built on
// it, is the same byte for byte on every machine.
package image

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"fulfillment/shared/runtime/runtimeenv"
)

// Repository names the base image. It is never pulled: ko finds it by digest
// in its cache ($KOCACHE/img), where WriteToCache puts it.
const Repository = "fulfillment.invalid/base/static"

// CertFile is where Go's crypto/x509 (and most TLS stacks) look on Linux.
const CertFile = "etc/ssl/certs/ca-certificates.crt"

// nonroot is distroless's unprivileged user; the functions need no root.
const nonroot = "65532:65532"

// CACertificates is the PEM bundle of the NSS roots that carry no extra
// constraint (a PEM file cannot express "distrust after").
func CACertificates() []byte {
	var buf bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return buf.Bytes()
}

// Base is the base image for linux/amd64 (Cloud Run's and most clusters'
// platform), with zero timestamps so it is reproducible.
func Base() (v1.Image, error) {
	layer, err := certificatesLayer()
	if err != nil {
		return nil, fmt.Errorf("image.Base: %w", err)
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: layer})
	if err != nil {
		return nil, fmt.Errorf("image.Base: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image.Base: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.User = nonroot
	cfg.Config.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SSL_CERT_FILE=/" + CertFile,
	}
	// What the Go runtime reads only at start, in one order so that the base
	// stays the same bytes from build to build.
	vars := runtimeenv.Vars()
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		cfg.Config.Env = append(cfg.Config.Env, k+"="+vars[k])
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image.Base: %w", err)
	}
	return img, nil
}

// certificatesLayer is one tar layer holding the certificate bundle and its
// parent directories, owned by root, dated at the epoch.
func certificatesLayer() (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	certs := CACertificates()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: CertFile, Mode: 0o644, Size: int64(len(certs)), Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(certs); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteToCache adds the base image to the OCI layout ko uses as its image
// cache ($KOCACHE/img) unless it is there already, and returns the digest
// reference to give ko as its base (KO_DEFAULTBASEIMAGE).
func WriteToCache(kocache string) (name.Digest, error) {
	img, err := Base()
	if err != nil {
		return name.Digest{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
	}
	ref, err := name.NewDigest(Repository + "@" + digest.String())
	if err != nil {
		return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
	}
	dir := filepath.Join(kocache, "img")
	path, err := layout.FromPath(dir)
	if err != nil {
		if err := os.MkdirAll(kocache, 0o755); err != nil {
			return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
		}
		if path, err = layout.Write(dir, empty.Index); err != nil {
			return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
		}
	}
	index, err := path.ImageIndex()
	if err != nil {
		return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
	}
	if found, err := partial.FindManifests(index, match.Digests(digest)); err == nil && len(found) > 0 {
		return ref, nil
	}
	if err := path.AppendImage(img); err != nil {
		return name.Digest{}, fmt.Errorf("image.WriteToCache: %w", err)
	}
	return ref, nil
}
