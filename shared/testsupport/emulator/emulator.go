// Package emulator starts the official Firestore and Pub/Sub emulators
// (gcloud) on free ports and stops them, for tests and the local stack.
//
// One pair serves a whole `make test` run (it exports FIRESTORE_EMULATOR_HOST
// and PUBSUB_EMULATOR_HOST); tests keep apart by each using its own project
// id, which both emulators keep separate. A package run alone starts its own
// pair in TestMain.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"fulfillment/shared/testsupport/localproc"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Env variables the Google client libraries read.
const (
	FirestoreHostEnv = "FIRESTORE_EMULATOR_HOST"
	PubSubHostEnv    = "PUBSUB_EMULATOR_HOST"
)

// Emulators is a running pair.
type Emulators struct {
	FirestoreHost string
	PubSubHost    string

	mu    sync.Mutex // procs, as both emulators start at once
	procs []*exec.Cmd
}

// FromEnv returns the pair the environment points at, if both are set.
func FromEnv() (*Emulators, bool) {
	fs, ps := os.Getenv(FirestoreHostEnv), os.Getenv(PubSubHostEnv)
	if fs == "" || ps == "" {
		return nil, false
	}
	return &Emulators{FirestoreHost: fs, PubSubHost: ps}, true
}

// Start starts both emulators on free loopback ports and waits until both
// answer. Their output goes to logs (nil: discarded).
func Start(ctx context.Context, logs io.Writer) (*Emulators, error) {
	if logs == nil {
		logs = io.Discard
	}
	e := &Emulators{}
	var fsErr, psErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		e.FirestoreHost, fsErr = e.start(ctx, logs, "emulators", "firestore", "start")
	}()
	go func() {
		defer wg.Done()
		e.PubSubHost, psErr = e.start(ctx, logs, "beta", "emulators", "pubsub", "start", "--project=emulator")
	}()
	wg.Wait()
	if err := errors.Join(fsErr, psErr); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// start runs one gcloud emulator in its own process group, so Stop can end
// the JVM gcloud spawns along with gcloud itself, and waits until it
// answers. An emulator whose port was taken before it bound it exits at
// once (gcloud with status 0): it starts again on a fresh port.
func (e *Emulators) start(ctx context.Context, logs io.Writer, args ...string) (string, error) {
	var host string
	err := localproc.OnFreePorts(1, func(ports []int) error {
		host = fmt.Sprintf("127.0.0.1:%d", ports[0])
		cmd := localproc.Command("gcloud", jvmEnv(), logs, append(args, "--host-port="+host, "--quiet")...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("emulator.Start gcloud %s: %w", strings.Join(args, " "), err)
		}
		e.mu.Lock()
		e.procs = append(e.procs, cmd)
		e.mu.Unlock()
		return waitReady(ctx, cmd, host, 90*time.Second)
	})
	return host, err
}

// jvmOptions run the emulators' JVMs with the client compiler only and the
// serial collector. An emulator lives for one run and shares two cores with
// what it serves: the C2 compiler's work and G1's concurrent threads cost
// more CPU over a run than the faster code they buy back. With them, make
// bench's webhook took 538-563 to 766-886 deliveries/s at concurrency 8 and
// the Firestore emulator's CPU per delivery fell by half (docs/testing.md).
const jvmOptions = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

// jvmEnv sets jvmOptions for the emulators, unless the caller's
// environment sets JAVA_TOOL_OPTIONS itself.
func jvmEnv() map[string]string {
	if _, set := os.LookupEnv("JAVA_TOOL_OPTIONS"); set {
		return nil
	}
	return map[string]string{"JAVA_TOOL_OPTIONS": jvmOptions}
}

// Export points the Google client libraries of this process at the pair.
func (e *Emulators) Export() {
	os.Setenv(FirestoreHostEnv, e.FirestoreHost)
	os.Setenv(PubSubHostEnv, e.PubSubHost)
}

// Stop ends the emulators this pair started (none for one from FromEnv).
func (e *Emulators) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	localproc.Stop(10*time.Second, e.procs...)
	e.procs = nil
}

func waitReady(ctx context.Context, cmd *exec.Cmd, host string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: 2 * time.Second} // a listener that never answers is not it
	for time.Now().Before(deadline) {
		if err := localproc.Ended(cmd); err != nil {
			return fmt.Errorf("emulator at %s: %w", host, err)
		}
		resp, err := hc.Get("http://" + host + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("emulator at %s not ready after %s", host, limit)
}

// FreePort is a free loopback port (see localproc.FreePort).
func FreePort() (int, error) { return localproc.FreePort() }

var projectSeq atomic.Int64

// NewProject returns a project id no other test in this run uses, so tests
// sharing the emulators keep apart.
func NewProject(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), projectSeq.Add(1))
}

// ClearFirestore deletes every document of project in the Firestore emulator.
func ClearFirestore(host, project string) error {
	req, _ := http.NewRequest(http.MethodDelete,
		fmt.Sprintf("http://%s/emulator/v1/projects/%s/databases/(default)/documents", host, project), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("emulator: clear firestore: " + resp.Status)
	}
	return nil
}
