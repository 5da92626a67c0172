package testdouble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// StripeMock is a running stripe-mock process.
type StripeMock struct {
	URL string
	cmd *exec.Cmd
}

// StartStripeMock runs stripe-mock (bin/stripe-mock under the module root,
// installed by `make tools`, or from PATH) on free local ports.
func StartStripeMock(ctx context.Context, logs io.Writer) (*StripeMock, error) {
	bin, err := stripeMockBin()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testdouble.StartStripeMock: %w", err)
	}
	m := &StripeMock{URL: "http://" + httpAddr, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.Stop()
	return nil, errors.New("testdouble.StartStripeMock: not listening after 30s")
}

// Stop ends the process.
func (m *StripeMock) Stop() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	_ = m.cmd.Wait()
}

func stripeMockBin() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if bin := filepath.Join(dir, "bin", "stripe-mock"); fileExists(bin) {
				return bin, nil
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if bin, err := exec.LookPath("stripe-mock"); err == nil {
		return bin, nil
	}
	return "", errors.New("testdouble: stripe-mock not found: run `make tools`")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
