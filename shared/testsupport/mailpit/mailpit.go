// Package mailpit runs a real mail server for tests and the local stack:
// Mailpit (bin/mailpit, built by `make tools`) on free loopback ports, with
// a small client for its HTTP API (/api/v1/messages, /api/v1/message/{ID}).
// Stop and Start again keep the ports and the stored messages: an SMTP
// outage for a while.
package mailpit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"fulfillment/shared/testsupport/localproc"
)

// Mailpit is a running (or stopped) Mailpit process.
type Mailpit struct {
	SMTPPort int
	// UIURL is the web UI (and API) address.
	UIURL string

	bin, db string
	logs    io.Writer
	hc      *http.Client
	extra   []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs Mailpit on free loopback ports, keeping its messages in dir;
// extra are more of its flags (e.g. --smtp-allowed-recipients, which makes
// it answer 550 to any other recipient).
func Start(ctx context.Context, dir string, logs io.Writer, extra ...string) (*Mailpit, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	if logs == nil {
		logs = io.Discard
	}
	var m *Mailpit
	err = localproc.OnFreePorts(2, func(ports []int) error {
		m = &Mailpit{SMTPPort: ports[0], UIURL: "http://127.0.0.1:" + strconv.Itoa(ports[1]), bin: bin,
			db: filepath.Join(dir, "mailpit.db"), logs: logs, hc: &http.Client{Timeout: 10 * time.Second}, extra: extra}
		return m.Resume(ctx)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Resume starts Mailpit again on the same ports and database.
func (m *Mailpit) Resume(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	ui := m.UIURL[len("http://"):]
	args := append([]string{"--smtp", "127.0.0.1:" + strconv.Itoa(m.SMTPPort), "--listen", ui, "--database", m.db,
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--smtp-disable-rdns", "--disable-version-check", "--max", "0", "--quiet"}, m.extra...)
	cmd := localproc.Command(m.bin, nil, m.logs, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mailpit.Start: %w", err)
	}
	if err := localproc.WaitServing(ctx, cmd, 20*time.Second, "127.0.0.1:"+strconv.Itoa(m.SMTPPort), ui); err != nil {
		localproc.Stop(2*time.Second, cmd)
		return fmt.Errorf("mailpit.Start: %w", err)
	}
	m.cmd = cmd
	return nil
}

// Stop ends the process; the messages stay in its database for Resume.
func (m *Mailpit) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		localproc.Stop(5*time.Second, m.cmd)
		m.cmd = nil
	}
}

func binary() (string, error) {
	if root, err := localproc.ModuleRoot(); err == nil {
		bin := filepath.Join(root, "bin", "mailpit")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	if bin, err := exec.LookPath("mailpit"); err == nil {
		return bin, nil
	}
	return "", errors.New("mailpit: bin/mailpit not found: run `make tools`")
}

// Address is a mailbox in Mailpit's API.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is one message in GET /api/v1/messages.
type Summary struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Subject   string    `json:"Subject"`
	Created   time.Time `json:"Created"`
}

// Message is GET /api/v1/message/{ID}: the message with both parts.
type Message struct {
	Summary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// Messages lists every message received, newest first.
func (m *Mailpit) Messages(ctx context.Context) ([]Summary, error) {
	var out struct {
		Total    int       `json:"total"`
		Messages []Summary `json:"messages"`
	}
	if err := m.get(ctx, "/api/v1/messages?limit=10000", &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Message reads one message, both parts.
func (m *Mailpit) Message(ctx context.Context, id string) (Message, error) {
	var out Message
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &out)
	return out, err
}

// Headers reads one message's headers.
func (m *Mailpit) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var out map[string][]string
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &out)
	return out, err
}

func (m *Mailpit) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.UIURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit: GET %s answered %d: %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}
