package testdouble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"fulfillment/shared/testsupport/localproc"
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
	var m *StripeMock
	err = localproc.OnFreePorts(2, func(ports []int) error {
		httpAddr, httpsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
		cmd := localproc.Command(bin, nil, logs, "-http-addr", httpAddr, "-https-addr", httpsAddr)
		if err := cmd.Start(); err != nil {
			return err
		}
		m = &StripeMock{URL: "http://" + httpAddr, cmd: cmd}
		if err := localproc.WaitServing(ctx, cmd, 30*time.Second, httpAddr, httpsAddr); err != nil {
			m.Stop()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testdouble.StartStripeMock: %w", err)
	}
	return m, nil
}

// Stop ends the process.
func (m *StripeMock) Stop() { localproc.Stop(5*time.Second, m.cmd) }

func stripeMockBin() (string, error) {
	if root, err := localproc.ModuleRoot(); err == nil {
		bin := filepath.Join(root, "bin", "stripe-mock")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	if bin, err := exec.LookPath("stripe-mock"); err == nil {
		return bin, nil
	}
	return "", errors.New("testdouble: stripe-mock not found: run `make tools`")
}
