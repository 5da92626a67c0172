package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// apiVersion is the libpod REST API path prefix podman 4 serves.
const apiVersion = "/v4.0.0/libpod"

// Serve starts podman's API service (podman system service) on a socket of
// its own; until stop is called, containers are started through it rather
// than by a podman command. A platform starts a container the same way,
// through an agent already running: measured from a podman command, the
// start-up figure would be mostly the podman command's own start-up (its
// binary and its storage opened, about 50 ms here), not the image's.
func (p *Podman) Serve(ctx context.Context) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "fulfillment-podman")
	if err != nil {
		return nil, fmt.Errorf("container.Serve: %w", err)
	}
	sock := filepath.Join(dir, "podman.sock")
	cmd := exec.Command(p.Bin, append(append([]string{}, p.Args...), "system", "service", "--time=0", "unix://"+sock)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("container.Serve: %w", err)
	}
	stop = func() {
		p.api = nil
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		os.RemoveAll(dir)
	}
	api := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := apiCall(ctx, api, http.MethodGet, "/_ping"); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("container.Serve: the API service did not answer: %w", err)
		}
	}
	p.api = api
	return stop, nil
}

// start starts a created container: through the API service when one is
// serving, else with podman start.
func (p *Podman) start(ctx context.Context, id string) error {
	if p.api == nil {
		_, err := p.run(ctx, "start", id)
		return err
	}
	return apiCall(ctx, p.api, http.MethodPost, "/containers/"+id+"/start")
}

// CLI is p without its API service: containers started by podman start.
func (p *Podman) CLI() *Podman { return &Podman{Bin: p.Bin, Args: p.Args} }

// Via says how p starts containers, for the figures.
func (p *Podman) Via() string {
	if p.api != nil {
		return "podman API"
	}
	return "podman start"
}

func apiCall(ctx context.Context, c *http.Client, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://podman"+apiVersion+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return errors.New(method + " " + path + ": " + resp.Status)
	}
	return nil
}
