package localproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenEnv makes the test binary a helper process that listens on the
// address it names (exiting 1 when it cannot bind, as Mailpit does).
const listenEnv = "LOCALPROC_TEST_LISTEN"

func TestMain(m *testing.M) {
	if addr := os.Getenv(listenEnv); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for {
			c, err := l.Accept()
			if err == nil {
				c.Close()
			}
		}
	}
	os.Exit(m.Run())
}

func helper(addr string) *exec.Cmd {
	return Command(os.Args[0], map[string]string{listenEnv: addr}, nil)
}

func TestAProcessThatEndsBeforeListeningIsReportedAsExited(t *testing.T) {
	cmd := Command("sh", nil, nil, "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	err = WaitServing(context.Background(), cmd, 10*time.Second, addr)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitServing = %v, want ErrExited with the exit status", err)
	}
	Stop(time.Second, cmd) // a reaped process: nothing to signal, nothing to wait for
}

// A port an outgoing connection took as its source before the process
// bound it (as in CI): the process exits, and OnFreePorts starts it again
// on fresh ports.
func TestOnFreePortsStartsAgainOnFreshPortsWhenAPortWasTaken(t *testing.T) {
	var tries [][]int
	var cmd *exec.Cmd
	err := OnFreePorts(1, func(ports []int) error {
		tries = append(tries, ports)
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		if len(tries) == 1 {
			taken, err := connectFrom(ports[0])
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
		}
		cmd = helper(addr)
		if err := cmd.Start(); err != nil {
			return err
		}
		return WaitServing(context.Background(), cmd, 10*time.Second, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer Stop(time.Second, cmd)
	if len(tries) != 2 || tries[0][0] == tries[1][0] {
		t.Fatalf("tries %v: want a second one on another port", tries)
	}
	if !accepts(fmt.Sprintf("127.0.0.1:%d", tries[1][0])) {
		t.Fatal("the second start is not serving")
	}
}

func TestFreePortsAreDistinctAndOutsideTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 1000 { // without the record of ports handed out, a repeat is all but certain
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] || (low > minPort && (port < minPort || port >= low)) {
			t.Fatalf("port %d: seen before %v, ephemeral range from %d", port, seen[port], low)
		}
		seen[port] = true
	}
}

// connectFrom opens a connection whose source port is port.
func connectFrom(port int) (net.Conn, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
		l.Close()
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	return d.Dial("tcp", l.Addr().String())
}

// A launcher (gcloud for the emulators) that exits leaves nothing of its
// group running: what it started is ended when its exit is reported.
func TestAnExitedLaunchersChildrenAreEnded(t *testing.T) {
	pidFile := t.TempDir() + "/child"
	cmd := Command("sh", nil, nil, "-c", `sleep 60 & echo $! > "$1"; exit 0`, "sh", pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitServing(context.Background(), cmd, 10*time.Second, addr); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitServing = %v, want ErrExited", err)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	if _, err := fmt.Sscan(string(raw), &child); err != nil {
		t.Fatal(err)
	}
	// Whoever reaps the orphan (init may not, in a container), it must not run.
	for deadline := time.Now().Add(5 * time.Second); !exited(&exec.Cmd{Process: &os.Process{Pid: child}}); {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the launcher's child %d still runs", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
