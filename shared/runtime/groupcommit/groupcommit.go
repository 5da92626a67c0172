// Package groupcommit sends concurrent requests to a backend in fewer
// calls without holding a lone one: a request that finds a free flight goes
// at once, alone; requests that arrive while every flight is busy wait for
// the next free one and go together. Under load the calls grow; idle, the
// latency is one call's.
package groupcommit

import (
	"context"
	"sync"
	"time"
)

// Send sends items in one call and returns each item's error (nil: done).
// It gets a context of its own, since the items come from several callers.
type Send[T any] func(ctx context.Context, items []T) []error

// Group groups the requests of one backend.
type Group[T any] struct {
	send       Send[T]
	maxFlights int
	maxItems   int
	timeout    time.Duration

	mu      sync.Mutex
	flights int
	pending []*request[T]
}

type request[T any] struct {
	item T
	err  error
	done chan struct{}
}

// New returns a group of at most maxFlights calls at once, of at most
// maxItems items each, each call bounded by timeout.
func New[T any](send Send[T], maxFlights, maxItems int, timeout time.Duration) *Group[T] {
	return &Group[T]{send: send, maxFlights: max(maxFlights, 1), maxItems: max(maxItems, 1), timeout: timeout}
}

// Do sends item, with others if they are waiting, and returns its outcome.
// If ctx ends first Do returns its error, but the item may still be sent:
// the outcome is then unknown, as with any timed-out call.
func (g *Group[T]) Do(ctx context.Context, item T) error {
	r := &request[T]{item: item, done: make(chan struct{})}
	g.enqueue(ctx, r)
	return r.wait(ctx)
}

// DoAll is Do for several items of one caller: they join the queue
// together, so a free flight takes them in one call (up to maxItems).
func (g *Group[T]) DoAll(ctx context.Context, items []T) []error {
	rs := make([]*request[T], len(items))
	for i, item := range items {
		rs[i] = &request[T]{item: item, done: make(chan struct{})}
	}
	g.enqueue(ctx, rs...)
	errs := make([]error, len(rs))
	for i, r := range rs {
		errs[i] = r.wait(ctx)
	}
	return errs
}

// enqueue queues rs and, if a flight is free, flies it on this goroutine.
func (g *Group[T]) enqueue(ctx context.Context, rs ...*request[T]) {
	g.mu.Lock()
	g.pending = append(g.pending, rs...)
	lead := g.flights < g.maxFlights
	if lead {
		g.flights++
	}
	g.mu.Unlock()
	if lead {
		g.fly(ctx)
	}
}

func (r *request[T]) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fly sends what is pending, then hands the flight on if more arrived.
func (g *Group[T]) fly(ctx context.Context) {
	g.mu.Lock()
	n := min(len(g.pending), g.maxItems)
	batch := g.pending[:n:n]
	g.pending = append([]*request[T](nil), g.pending[n:]...)
	g.mu.Unlock()
	if n > 0 {
		items := make([]T, n)
		for i, r := range batch {
			items[i] = r.item
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
		errs := g.send(callCtx, items)
		cancel()
		for i, r := range batch {
			if i < len(errs) {
				r.err = errs[i]
			}
			close(r.done)
		}
	}
	g.mu.Lock()
	more := len(g.pending) > 0
	if !more {
		g.flights--
	}
	g.mu.Unlock()
	if more {
		// The requests that waited go on another goroutine: this caller's
		// own answer is ready and must not wait for theirs.
		go g.fly(ctx)
	}
}
