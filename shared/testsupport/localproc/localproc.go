// Package localproc runs the local helper processes of the stack and its
// tests (emulators, stripe-mock, the functions): in their own process group,
// on free loopback ports, stopped with SIGTERM and then SIGKILL. Standard
// library only, so every test helper package may use it.
package localproc

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

// Command prepares bin in its own process group (so Stop ends whatever it
// spawns too), with env added to this process's, writing to logs.
func Command(bin string, env map[string]string, logs io.Writer, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return cmd
}

// Signal sends sig to a started command's process group.
func Signal(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// Stop ends started commands: SIGTERM to each group, then SIGKILL to any
// still running after grace.
func Stop(grace time.Duration, cmds ...*exec.Cmd) {
	for _, cmd := range cmds {
		_ = Signal(cmd, syscall.SIGTERM)
	}
	for _, cmd := range cmds {
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			_ = Signal(cmd, syscall.SIGKILL)
			<-done
		}
	}
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is a free loopback host:port.
func FreeAddr() (string, error) {
	port, err := FreePort()
	return fmt.Sprintf("127.0.0.1:%d", port), err
}

// WaitListening waits until something accepts connections on addr.
func WaitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("localproc: nothing listening on %s after %s", addr, limit)
}

// ModuleRoot finds the directory holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localproc: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Build compiles the module's package pkg (e.g. "./infra/cmd/fulfillctl")
// into dir and returns the binary's path, so that a test can run a command
// as an operator does.
func Build(ctx context.Context, pkg, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localproc.Build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}
