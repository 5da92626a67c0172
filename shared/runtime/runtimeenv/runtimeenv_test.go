package runtimeenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoPeerEnv makes the test binary a helper: it dials the address in the
// variable, answers each byte it reads with that byte, and prints how many
// times its threads slept and were woken (context switches) over the
// exchanges. It is started with GOMAXPROCS 1, as a function on one vCPU.
const echoPeerEnv = "RUNTIMEENV_TEST_ECHO_PEER"

// exchanges is how many requests the helper answers while counted.
const exchanges = 500

func TestMain(m *testing.M) {
	if addr := os.Getenv(echoPeerEnv); addr != "" {
		if err := echoPeer(addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func echoPeer(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	b := make([]byte, 1)
	var before int
	for i := range exchanges + 1 {
		if i == 1 { // counted from the first exchange on, the runtime warm
			if before, err = contextSwitches(); err != nil {
				return err
			}
		}
		if _, err := c.Read(b); err != nil {
			return err
		}
		if _, err := c.Write(b); err != nil {
			return err
		}
	}
	after, err := contextSwitches()
	fmt.Println(after - before)
	return err
}

// contextSwitches sums the voluntary context switches of this process's threads.
func contextSwitches() (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, err
	}
	sum := 0
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return 0, err
				}
				sum += n
			}
		}
	}
	return sum, nil
}

// wakeUps runs the helper with GODEBUG=godebug and sends it a request every
// 300 µs, so it goes idle between them as a function waiting on Firestore
// does: what it returns is the helper's context switches per request.
func wakeUps(t *testing.T, godebug string) float64 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), echoPeerEnv+"="+l.Addr().String(), "GOMAXPROCS=1", "GODEBUG="+godebug)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := []byte{1}
	for range exchanges + 1 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Microsecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	n, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("helper printed %q", out.String())
	}
	return float64(n) / exchanges
}

// GoDebug exists for one effect: a process that goes idle between requests
// wakes its threads fewer times per request. If a Go release changes sysmon
// so that it no longer does, this fails, and the setting should go.
func TestGoDebugCutsTheWakeUpsOfAProcessIdleBetweenRequests(t *testing.T) {
	without, with := wakeUps(t, ""), wakeUps(t, GoDebug)
	t.Logf("context switches per request: %.2f without GODEBUG, %.2f with %s", without, with, GoDebug)
	if with > without/2 {
		t.Fatalf("%.2f context switches per request with %s, %.2f without: want fewer than half", with, GoDebug, without)
	}
}

func TestMissingNamesTheSettingsAGODEBUGLacks(t *testing.T) {
	for _, c := range []struct {
		godebug string
		missing int
	}{
		{"", 1},
		{"http2debug=1", 1},
		{"schedtrace=1000", 1},
		{GoDebug, 0},
		{"http2debug=1, " + GoDebug, 0},
	} {
		if got := Missing(c.godebug); len(got) != c.missing {
			t.Errorf("Missing(%q) = %v, want %d settings", c.godebug, got, c.missing)
		}
	}
}
