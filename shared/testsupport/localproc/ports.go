package localproc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// FreePort finds a free loopback port below the kernel's ephemeral range
// (ip_local_port_range, where the source ports of outgoing connections come
// from). Inside that range a busy test run's connections can take the port
// between this call and the bind of the process it was meant for: in CI,
// Mailpit exited with "address already in use" on one. Outside the range
// only another listener can, and OnFreePorts starts again on fresh ports.
// No port is handed out twice in one process, so two servers started side by
// side never race for the same one.
func FreePort() (int, error) {
	handed.Lock()
	defer handed.Unlock()
	if low := ephemeralLow(); low > minPort {
		for range 64 {
			port := minPort + rand.IntN(low-minPort)
			if handed.ports[port] {
				continue
			}
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				handed.ports[port] = true
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var handed = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// minPort keeps clear of the well-known and commonly configured ports.
const minPort = 10000

// ephemeralLow is the first port the kernel hands to outgoing connections
// (0 where it cannot be read: FreePort then asks the kernel for one).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		return 0
	}
	return low
}

// FreeAddr is a free loopback host:port.
func FreeAddr() (string, error) {
	port, err := FreePort()
	return fmt.Sprintf("127.0.0.1:%d", port), err
}

// OnFreePorts calls start with n free ports, and again with fresh ones (up
// to three tries) while it fails with ErrExited: a port taken before the
// process bound it is no reason to fail a test.
func OnFreePorts(n int, start func(ports []int) error) error {
	var err error
	for range 3 {
		ports := make([]int, n)
		for i := range ports {
			if ports[i], err = FreePort(); err != nil {
				return err
			}
		}
		if err = start(ports); !errors.Is(err, ErrExited) {
			return err
		}
	}
	return err
}
