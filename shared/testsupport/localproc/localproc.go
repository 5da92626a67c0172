// Package localproc runs the local helper processes of the stack and its
// tests (emulators, stripe-mock, the functions): in their own process group,
// on free loopback ports, stopped with SIGTERM and then SIGKILL. Standard
// library only, so every test helper package may use it.
package localproc

import (
	"bytes"
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
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil { // a reaped pid may be another's now
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

// WaitListening waits until something accepts connections on addr.
func WaitListening(ctx context.Context, addr string, limit time.Duration) error {
	return WaitServing(ctx, nil, limit, addr)
}

// ErrExited says a process ended before it listened: on a free port most
// often because something took the port between FreePort and its bind.
var ErrExited = errors.New("localproc: the process exited before it listened")

// WaitServing waits until every addr accepts connections. If cmd (when not
// nil) ends first, it is reaped and the error wraps ErrExited at once,
// rather than after limit of dialing a port nobody will open.
func WaitServing(ctx context.Context, cmd *exec.Cmd, limit time.Duration, addrs ...string) error {
	deadline := time.Now().Add(limit)
	for _, addr := range addrs {
		for !accepts(addr) {
			if err := Ended(cmd); err != nil {
				return fmt.Errorf("%w (waiting for %s)", err, addr)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("localproc: nothing listening on %s after %s", addr, limit)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// Ended returns an error wrapping ErrExited, with the exit status, if cmd
// (when not nil) has ended; what is left of its process group is killed
// and the process reaped. It returns nil while cmd runs.
func Ended(cmd *exec.Cmd) error {
	if cmd == nil || !exited(cmd) {
		return nil
	}
	if cmd.ProcessState == nil {
		// A zombie still holds its pid, so the group is still its own:
		// end what it started (a launcher's child) before reaping it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	return fmt.Errorf("%w: %s", ErrExited, cmd.ProcessState)
}

// exited tells whether a started process has ended, without reaping it (a
// zombie until Wait), so that Stop and Wait still work on a running one.
func exited(cmd *exec.Cmd) bool {
	if cmd.ProcessState != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which ends at the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
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
