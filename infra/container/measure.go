package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// User is the unprivileged user every image runs as (distroless's nonroot).
const User = "65532:65532"

// CPUs and Memory are the limits a container gets: Cloud Run's defaults,
// which terraform/modules/function writes out and the entry point tunes the
// Go runtime to (GOMAXPROCS from the CPU quota).
const (
	CPUs   = "1"
	Memory = "512m"
)

// GracePeriod is what Cloud Run gives an instance between SIGTERM and SIGKILL.
const GracePeriod = 10 * time.Second

// HealthPaths are the probes both entry points answer (func-go's, which the
// GCP entry point answers too).
var HealthPaths = []string{"/health/readiness", "/health/liveness"}

// Options shape one measured run.
type Options struct {
	// Env is the function's settings (PORT and LISTEN_ADDRESS are set here).
	Env map[string]string
	// Port is where the function serves on the host network; 0 picks a free one.
	Port int
	// Probe is the path of the request timed as the first handled one:
	// a GET, which every function answers itself (405: it takes POSTs)
	// without touching storage. Default "/".
	Probe string
	// Health are the paths that must answer 200; default HealthPaths.
	Health []string
	// StartTimeout bounds the wait for the first handled request; default 30 s.
	StartTimeout time.Duration
	// Exercise, when set, runs after the health checks and before the
	// resident memory is read, with the function's base URL: real traffic
	// (events against the emulators, say) for a figure under work rather
	// than idle. An error fails the measurement.
	Exercise func(ctx context.Context, baseURL string) error
}

// Measurement is one run of one image, from start to exit.
type Measurement struct {
	// Startup runs from the start request (to podman's API service while
	// Serve runs it, else `podman start`) until the function answered
	// Probe: what a cold start costs on this runtime. The podman command
	// adds its own start-up, about 50 ms here.
	Startup time.Duration
	// ProcessStartup runs from the exec of the image's entry point (runc's
	// init turning into the function's binary) until the function answered
	// Probe: the image's own share (Go runtime, package initialisation,
	// Setup, listening). Zero when the exec was not seen. The exec is seen
	// by polling /proc every 0.1 ms: on a busy machine the poller may see
	// it late, so the figure reads low there (Startup does not).
	ProcessStartup time.Duration
	// ProbeStatus is Probe's answer.
	ProbeStatus int
	// Health is each health path's status.
	Health map[string]int
	// RSSBytes is the process's resident memory after those requests
	// (VmRSS); AnonBytes the part that is not the mapped binary (RssAnon).
	RSSBytes, AnonBytes int64
	// UID is the user the process ran as (its real uid).
	UID int
	// ReadOnlyRoot says the process's root filesystem was mounted read-only.
	ReadOnlyRoot bool
	// StopTime runs from SIGTERM until the process exited.
	StopTime time.Duration
	// ExitCode is the process's exit status (0 for a clean shutdown).
	ExitCode int
	// Logs are the container's stdout and stderr.
	Logs string
}

// Measure loads the image ref from the OCI layout at layoutDir, runs it once
// (see Podman.Measure) and removes it again. ref is a digest ("sha256:...")
// or what ko prints ("<layout>@sha256:...").
func Measure(ctx context.Context, layoutDir, ref string, o Options) (Measurement, error) {
	p, err := Find()
	if err != nil {
		return Measurement{}, err
	}
	digest := ref
	if _, d, ok := strings.Cut(ref, "@"); ok {
		digest = d
	}
	image, err := p.Load(ctx, layoutDir, digest)
	if err != nil {
		return Measurement{}, err
	}
	m, err := p.Measure(ctx, image, o)
	return m, errors.Join(err, p.Remove(context.WithoutCancel(ctx), image))
}

// Measure runs image as Cloud Run and the Knative manifests would (read-only
// root filesystem with nothing writable, user 65532, every capability
// dropped, no new privileges, on the host's network), times its first
// handled request, checks its health paths, reads its resident memory, then
// sends it SIGTERM and times its exit. An error says what failed and carries
// the container's logs; the measurement holds what was measured before.
func (p *Podman) Measure(ctx context.Context, image string, o Options) (m Measurement, err error) {
	if o.Probe == "" {
		o.Probe = "/"
	}
	if o.Health == nil {
		o.Health = HealthPaths
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Port == 0 {
		if o.Port, err = freePort(); err != nil {
			return m, err
		}
	}
	env := map[string]string{}
	for k, v := range o.Env {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(o.Port)
	env["LISTEN_ADDRESS"] = fmt.Sprintf("0.0.0.0:%d", o.Port) // func-go binds 127.0.0.1 otherwise
	args := []string{"create", "--read-only", "--read-only-tmpfs=false", "--user", User,
		"--cap-drop", "all", "--security-opt", "no-new-privileges", "--network", "host",
		"--cpus", CPUs, "--memory", Memory}
	for _, k := range sortedKeys(env) {
		args = append(args, "--env", k+"="+env[k])
	}
	dir, err := os.MkdirTemp("", "fulfillment-container")
	if err != nil {
		return m, fmt.Errorf("container.Measure: %w", err)
	}
	defer os.RemoveAll(dir)
	pidfile := filepath.Join(dir, "pid")
	id, err := p.run(ctx, append(args, "--pidfile", pidfile, image)...)
	if err != nil {
		return m, err
	}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		logs, _ := p.run(cleanup, "logs", id)
		m.Logs = logs
		if _, rmErr := p.run(cleanup, "rm", "--force", "--time", "0", id); rmErr != nil && err == nil {
			err = rmErr
		}
		if err != nil {
			err = fmt.Errorf("%w\ncontainer logs:\n%s", err, m.Logs)
		}
	}()

	// The process may serve before `podman start` returns: poll meanwhile.
	url := fmt.Sprintf("http://127.0.0.1:%d", o.Port)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	start := &starting{done: make(chan struct{})}
	answered := make(chan struct{})
	execs := watchExec(pidfile, answered)
	t0 := time.Now()
	go start.run(ctx, p, id)
	first, code, err := firstAnswer(ctx, client, url+o.Probe, t0.Add(o.StartTimeout), start)
	close(answered)
	if err != nil {
		return m, err
	}
	m.Startup, m.ProbeStatus = first.Sub(t0), code
	if exec := <-execs; !exec.IsZero() {
		m.ProcessStartup = first.Sub(exec)
	}
	if <-start.done; start.err != nil {
		return m, start.err
	}
	pid := start.pid

	m.Health = map[string]int{}
	for _, path := range o.Health {
		code, err := get(client, url+path)
		if err != nil {
			return m, fmt.Errorf("container.Measure: %s: %w", path, err)
		}
		m.Health[path] = code
	}
	if o.Exercise != nil {
		if err := o.Exercise(ctx, url); err != nil {
			return m, fmt.Errorf("container.Measure: exercise: %w", err)
		}
	}
	if m.RSSBytes, m.AnonBytes, m.UID, err = status(pid); err != nil {
		return m, err
	}
	if m.ReadOnlyRoot, err = readOnlyRoot(pid); err != nil {
		return m, err
	}

	// SIGTERM as the platform sends it; podman's own kill adds its start-up
	// time to the figure, so signal the process directly when allowed.
	stop := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if _, err := p.run(ctx, "kill", "--signal", "TERM", id); err != nil {
			return m, err
		}
	}
	if !exited(pid, stop.Add(GracePeriod)) {
		_, _ = p.run(cleanup, "kill", "--signal", "KILL", id)
		return m, fmt.Errorf("container.Measure: still running %s after SIGTERM (Cloud Run kills it then)", GracePeriod)
	}
	m.StopTime = time.Since(stop)
	exit, err := p.run(ctx, "wait", id)
	if err != nil {
		return m, err
	}
	if m.ExitCode, err = strconv.Atoi(exit); err != nil {
		return m, fmt.Errorf("container.Measure: exit code %q: %w", exit, err)
	}
	return m, nil
}

// starting is a `podman start` under way: once done is closed, err says
// whether it failed, else pid is the container's process (0 when it has
// exited already).
type starting struct {
	done chan struct{}
	err  error
	pid  int
}

func (s *starting) run(ctx context.Context, p *Podman, id string) {
	defer close(s.done)
	if s.err = p.start(ctx, id); s.err != nil {
		return
	}
	var pid string
	if pid, s.err = p.run(ctx, "inspect", "--format", "{{.State.Pid}}", id); s.err == nil {
		s.pid, _ = strconv.Atoi(pid)
	}
}

// watchExec sends when the container's process turned into the image's
// entry point: runc's init (named "runc:[2:INIT]", its pid in pidfile once
// runc created it) waits for `runc start`, then execs the binary. It polls
// until stop is closed and sends the zero time if it never saw the init
// before the exec.
func watchExec(pidfile string, stop <-chan struct{}) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		sawInit := false
		for {
			select {
			case <-stop:
				out <- time.Time{}
				return
			default:
			}
			if raw, err := os.ReadFile(pidfile); err == nil {
				if comm, err := os.ReadFile("/proc/" + strings.TrimSpace(string(raw)) + "/comm"); err == nil {
					if strings.HasPrefix(string(comm), "runc") {
						sawInit = true
					} else {
						at := time.Now()
						if !sawInit {
							at = time.Time{}
						}
						out <- at
						return
					}
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return out
}

// firstAnswer polls url until it answers with anything but 503 (func-go's
// "still starting"), and returns when; it gives up when the container
// failed to start or its process exited.
func firstAnswer(ctx context.Context, client *http.Client, url string, deadline time.Time, start *starting) (time.Time, int, error) {
	done := start.done
	for i := 0; ; i++ {
		code, err := get(client, url)
		if err == nil && code != http.StatusServiceUnavailable {
			return time.Now(), code, nil
		}
		select {
		case <-done:
			if start.err != nil {
				return time.Time{}, 0, start.err
			}
			done = nil // started: keep polling
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if done == nil && i%20 == 0 && (start.pid == 0 || gone(start.pid)) {
			return time.Time{}, 0, errors.New("container.Measure: the process exited before answering")
		}
		if time.Now().After(deadline) {
			return time.Time{}, 0, fmt.Errorf("container.Measure: %s not answered in time (last: %d, %v)", url, code, err)
		}
	}
}

func get(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// status reads a process's VmRSS and RssAnon in bytes, and its real uid.
func status(pid int) (rss, anon int64, uid int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("container.status: %w", err)
	}
	defer f.Close()
	uid = -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch key {
		case "VmRSS":
			rss = n << 10 // kB
		case "RssAnon":
			anon = n << 10
		case "Uid":
			uid = int(n)
		}
	}
	if rss == 0 || uid < 0 {
		return 0, 0, 0, fmt.Errorf("container.status: no VmRSS or Uid for process %d", pid)
	}
	return rss, anon, uid, sc.Err()
}

// readOnlyRoot says whether the root mount a process sees is read-only.
func readOnlyRoot(pid int) (bool, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/mounts", pid))
	if err != nil {
		return false, fmt.Errorf("container.readOnlyRoot: %w", err)
	}
	ro, found := false, false
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 4 && fields[1] == "/" { // the last mount on / wins
			ro, found = false, true
			for _, opt := range strings.Split(fields[3], ",") {
				ro = ro || opt == "ro"
			}
		}
	}
	if !found {
		return false, fmt.Errorf("container.readOnlyRoot: process %d has no root mount", pid)
	}
	return ro, nil
}

// exited waits until pid is gone, polling every millisecond until deadline.
func exited(pid int, deadline time.Time) bool {
	for !gone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// gone says whether pid has exited (or is a zombie its parent has yet to reap).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "pid (comm) state ...": comm may hold spaces, the state follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("container: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
