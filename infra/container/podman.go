// Package container runs the images we ship as containers, under podman,
// the way Cloud Run and Knative run them: a read-only root filesystem, user
// 65532, no capabilities, serving on PORT; and measures what the performance
// targets are about: the time from start to the first handled request, the
// resident memory, and the time to exit after SIGTERM (Cloud Run allows 10 s).
//
// Images come from the OCI layouts ko writes (make images, infra/image's
// test). Podman runs rootful here with runc and the cgroupfs manager (see
// Args); the functions reach the emulators through the host's network.
package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ArgsEnv overrides podman's global flags (space-separated), for a machine
// where the defaults (Args) do not fit, e.g. rootless podman with crun and
// systemd: FULFILLMENT_PODMAN_ARGS="".
const ArgsEnv = "FULFILLMENT_PODMAN_ARGS"

// Args are podman's global flags unless ArgsEnv is set: runc, because crun
// refuses a hybrid cgroup layout, and cgroupfs, because no systemd runs here.
var Args = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}

// Podman runs podman commands.
type Podman struct {
	Bin  string
	Args []string
	api  *http.Client // the API service's client while Serve runs it
}

// ErrNoPodman says podman is not installed.
var ErrNoPodman = errors.New("container: podman not found on PATH (make tools installs it with runc, as root on Debian; elsewhere install podman)")

// Find locates podman and its global flags.
func Find() (*Podman, error) {
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil, ErrNoPodman
	}
	args := Args
	if v, ok := os.LookupEnv(ArgsEnv); ok {
		args = strings.Fields(v)
	}
	return &Podman{Bin: bin, Args: args}, nil
}

// run runs one podman command and returns its trimmed stdout; an error
// carries stderr.
func (p *Podman) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.Bin, append(append([]string{}, p.Args...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// refName is the name Load gives the one image of the layout it hands podman.
const refName = "image"

// Load puts the image with the given manifest digest ("sha256:...") from the
// OCI layout at layoutDir into podman's storage and returns its image id.
// ko's layouts list every image it built without a name; podman loads from
// a layout only an image named in its index, so Load hands podman a layout
// of its own: an index naming that one image, over the same blobs.
func (p *Podman) Load(ctx context.Context, layoutDir, digest string) (string, error) {
	layoutDir, err := filepath.Abs(layoutDir)
	if err != nil {
		return "", fmt.Errorf("container.Load: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("container.Load: %w", err)
	}
	var index struct {
		Manifests []map[string]any `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		return "", fmt.Errorf("container.Load: %s: %w", layoutDir, err)
	}
	var manifest map[string]any
	for _, m := range index.Manifests {
		if m["digest"] == digest {
			manifest = m
		}
	}
	if manifest == nil {
		return "", fmt.Errorf("container.Load: no image %s in %s", digest, layoutDir)
	}
	manifest["annotations"] = map[string]string{"org.opencontainers.image.ref.name": refName}
	one, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{manifest},
	})
	if err != nil {
		return "", fmt.Errorf("container.Load: %w", err)
	}
	dir, err := os.MkdirTemp("", "fulfillment-load")
	if err != nil {
		return "", fmt.Errorf("container.Load: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := errors.Join(
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644),
		os.WriteFile(filepath.Join(dir, "index.json"), one, 0o644),
		os.Symlink(filepath.Join(layoutDir, "blobs"), filepath.Join(dir, "blobs")),
	); err != nil {
		return "", fmt.Errorf("container.Load: %w", err)
	}
	out, err := p.run(ctx, "pull", "--quiet", "oci:"+dir+":"+refName)
	if err != nil {
		return "", fmt.Errorf("container.Load %s: %w", digest, err)
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return "", fmt.Errorf("container.Load %s: podman printed no image id", digest)
	}
	return lines[len(lines)-1], nil
}

// Remove deletes an image Load put into podman's storage.
func (p *Podman) Remove(ctx context.Context, image string) error {
	_, err := p.run(ctx, "rmi", "--force", image)
	return err
}
