package localproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// CPUGroup is a cgroup with a CPU quota, the way a container runtime gives a
// container its CPUs (Cloud Run gives each instance 1 vCPU): processes
// started in it see the quota as a container's process does.
type CPUGroup struct {
	dir   string // the group's directory
	procs string // its cgroup.procs
}

// ErrNoCPUGroup is returned when this machine lets us make no cgroup with a
// CPU quota (no root, or no cpu controller to write to).
var ErrNoCPUGroup = errors.New("localproc: cannot make a cgroup with a CPU quota here (needs root and a writable cpu controller)")

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// quotaPeriod is the scheduler period the quota is given in: 100 ms, the default.
const quotaPeriod = 100000

// NewCPUGroup makes a cgroup named name (unique to the caller) allowed cpus
// CPUs, on cgroup v1's cpu controller or cgroup v2's cpu.max. Remove it when
// its processes have ended.
func NewCPUGroup(name string, cpus float64) (*CPUGroup, error) {
	quota := int(cpus * quotaPeriod)
	if v1 := filepath.Join(cgroupRoot, "cpu"); isDir(v1) {
		return makeGroup(filepath.Join(v1, name), map[string]string{
			"cpu.cfs_period_us": strconv.Itoa(quotaPeriod), "cpu.cfs_quota_us": strconv.Itoa(quota)})
	}
	// cgroup v2: the root must hand the cpu controller to its children.
	if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCPUGroup, err)
	}
	return makeGroup(filepath.Join(cgroupRoot, name), map[string]string{"cpu.max": fmt.Sprintf("%d %d", quota, quotaPeriod)})
}

func makeGroup(dir string, settings map[string]string) (*CPUGroup, error) {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %v", ErrNoCPUGroup, err)
	}
	g := &CPUGroup{dir: dir, procs: filepath.Join(dir, "cgroup.procs")}
	for file, value := range settings {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
			_ = g.Remove()
			return nil, fmt.Errorf("%w: %s: %v", ErrNoCPUGroup, file, err)
		}
	}
	return g, nil
}

// Wrap makes cmd start inside the group: a shell moves itself into it and
// then becomes cmd's program, so the process (same pid) is in the group
// from its first instruction. Call it before cmd.Start.
func (g *CPUGroup) Wrap(cmd *exec.Cmd) {
	args := append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, g.procs, cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args, cmd.Err = "/bin/sh", args, nil
}

// Remove deletes the group; it fails while a process is still in it.
func (g *CPUGroup) Remove() error { return os.Remove(g.dir) }

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
