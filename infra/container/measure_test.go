package container

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// The /proc readers Measure relies on, checked on this test's own process
// and on a child that exits (podman itself is exercised by infra/image).
func TestProcessReaders(t *testing.T) {
	rss, anon, uid, err := status(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if uid != os.Getuid() || rss <= anon || anon <= 0 {
		t.Errorf("status = rss %d, anon %d, uid %d; want rss > anon > 0 and uid %d", rss, anon, uid, os.Getuid())
	}
	if _, err := readOnlyRoot(os.Getpid()); err != nil {
		t.Error(err)
	}

	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	pid := child.Process.Pid
	if gone(pid) {
		t.Fatal("a running child counts as gone")
	}
	if exited(pid, time.Now().Add(20*time.Millisecond)) {
		t.Fatal("exited reported a running child")
	}
	_ = child.Process.Kill()
	// Not reaped yet: a zombie counts as gone.
	if !exited(pid, time.Now().Add(5*time.Second)) {
		t.Fatal("a killed child never counted as gone")
	}
	_ = child.Wait()
	if !gone(pid) {
		t.Error("a reaped child is not gone")
	}
}

func TestFindHonoursArgsEnv(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed")
	}
	t.Setenv(ArgsEnv, "--log-level debug")
	p, err := Find()
	if err != nil || len(p.Args) != 2 || p.Args[0] != "--log-level" {
		t.Fatalf("Find = %+v, %v; want the flags of %s", p, err, ArgsEnv)
	}
	t.Setenv(ArgsEnv, "")
	if p, _ = Find(); len(p.Args) != 0 {
		t.Fatalf("an empty %s kept flags %v", ArgsEnv, p.Args)
	}
}
