package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/testsupport/localproc"
)

// printProcsEnv makes the test binary a helper that runs tuneProcs, prints
// GOMAXPROCS and exits: it must run in a cgroup of its own.
const printProcsEnv = "ENTRYPOINT_TEST_PRINT_PROCS"

func TestMain(m *testing.M) {
	if os.Getenv(printProcsEnv) != "" {
		tuneProcs(slog.New(slog.NewTextHandler(io.Discard, nil)))
		fmt.Println(runtime.GOMAXPROCS(0))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procsIn is GOMAXPROCS as a function sets it in a container of cpus CPUs,
// with env added to its environment.
func procsIn(t *testing.T, cpus float64, env map[string]string) int {
	t.Helper()
	g, err := localproc.NewCPUGroup(fmt.Sprintf("entrypoint-test-%d-%d", os.Getpid(), time.Now().UnixNano()), cpus)
	if errors.Is(err, localproc.ErrNoCPUGroup) {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI runs as root, as this machine's kind does: it must test this
		}
		t.Skip(err) // no root or no writable cpu controller: nothing to run in
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	env[printProcsEnv] = "1"
	var out strings.Builder
	cmd := localproc.Command(os.Args[0], env, nil)
	if _, set := env["GOMAXPROCS"]; !set {
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	}
	cmd.Stdout = &out
	g.Wrap(cmd)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper in a %.1f-CPU group: %v", cpus, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("helper printed %q", out.String())
	}
	return n
}

func TestGOMAXPROCSIsTheContainersCPUQuotaRoundedDown(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs to tell a quota of 1 from the machine")
	}
	for _, c := range []struct {
		cpus float64
		want int
	}{{1, 1}, {0.5, 1}, {1.5, 1}, {2, 2}} {
		if got := procsIn(t, c.cpus, map[string]string{}); got != c.want {
			t.Errorf("%.1f CPUs: GOMAXPROCS = %d, want %d", c.cpus, got, c.want)
		}
	}
}

func TestTheEnvironmentsGOMAXPROCSWins(t *testing.T) {
	if got := procsIn(t, 1, map[string]string{"GOMAXPROCS": "3"}); got != 3 {
		t.Errorf("GOMAXPROCS=3 in a 1-CPU container: GOMAXPROCS = %d, want 3", got)
	}
}
