package localstack

import (
	"sync"
	"time"
)

// pushWaits keeps, for the last pushes each redeliverer took, how long the
// emulator held the message between its publish and its push. The
// emulator's push loops sleep up to 100 ms when idle, a wait GCP's push does
// not have; the bench takes it out of its latency figures (infra/bench).
type pushWaits struct {
	mu   sync.Mutex
	ring [pushWaitsKept]PushWait
	next int
}

// pushWaitsKept bounds the memory a long make run spends on it.
const pushWaitsKept = 1024

// PushWait is one push: the function it was for, when the emulator pushed
// it to that function's redeliverer, and how long after its publish.
type PushWait struct {
	Function string
	Arrived  time.Time
	Wait     time.Duration
}

func (p *pushWaits) add(w PushWait) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ring[p.next%pushWaitsKept] = w
	p.next++
}

// between returns the kept pushes to fn that arrived in [from, to], oldest first.
func (p *pushWaits) between(fn string, from, to time.Time) []PushWait {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PushWait
	for i := max(0, p.next-pushWaitsKept); i < p.next; i++ {
		w := p.ring[i%pushWaitsKept]
		if w.Function == fn && !w.Arrived.Before(from) && !w.Arrived.After(to) {
			out = append(out, w)
		}
	}
	return out
}

// PushWaits returns the pushes to fn's redeliverer that arrived in [from,
// to], oldest first, among the last 1,024 the stack took.
func (s *Stack) PushWaits(fn string, from, to time.Time) []PushWait {
	return s.waits.between(fn, from, to)
}
