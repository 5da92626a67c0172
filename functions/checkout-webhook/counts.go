package checkoutwebhook

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// countDelay is how long the delivery of a repeat this process saw
// recorded waits to be counted: the repeats of that span are counted
// together, a few requests for all of them, instead of a write each, which
// was a quarter of the webhook's CPU at concurrency 1 (docs/testing.md). Only
// the count waits: such a repeat is answered for an event stored and
// published before.
const countDelay = 500 * time.Millisecond

// countRetryDelays is how many delays a failed count waits before it is
// tried again, so an outage is not hit every half second.
const countRetryDelays = 10

// countTimeout bounds one flush of the counts in the background.
const countTimeout = 10 * time.Second

// closeCountTimeout bounds the last flush at shutdown: with the requests'
// drain and the telemetry's flush the process exits within Cloud Run's 10 s.
const closeCountTimeout = time.Second

// repeatCounts holds the deliveries of seen repeats until they are written.
// Counts kept through a flush that failed are written by a later one; at
// shutdown the rest are written or, if that fails too, logged as not
// counted: an audit figure short, never an event lost. Where the instance
// has CPU only while it serves (Cloud Run's default), a flush due between
// requests may run late, with the next request or at shutdown.
type repeatCounts struct {
	write  func(ctx context.Context, counts map[string]int64) map[string]error
	gone   func(id string) // the record is no longer there
	logger *slog.Logger
	delay  time.Duration

	flushing chan struct{} // holds a token while a flush runs: one at a time

	mu      sync.Mutex
	pending map[string]int64 // event id -> deliveries not written yet
	timer   *time.Timer      // the next flush, when one is due
	closed  bool
}

func newRepeatCounts(write func(context.Context, map[string]int64) map[string]error, gone func(string), logger *slog.Logger, delay time.Duration) *repeatCounts {
	if delay <= 0 {
		delay = countDelay
	}
	return &repeatCounts{write: write, gone: gone, logger: logger, delay: delay,
		flushing: make(chan struct{}, 1), pending: map[string]int64{}}
}

// add counts one delivery of id within the delay. It is false once the
// counts are closed: the caller counts the delivery itself.
func (c *repeatCounts) add(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.pending[id]++
	c.schedule(c.delay)
	return true
}

// schedule arms the next flush unless one is armed; c.mu is held.
func (c *repeatCounts) schedule(after time.Duration) {
	if c.timer == nil {
		c.timer = time.AfterFunc(after, c.flushInBackground)
	}
}

// flushInBackground is the armed flush, run: the next repeat arms another.
func (c *repeatCounts) flushInBackground() {
	c.mu.Lock()
	c.timer = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	c.flush(ctx)
}

// flush writes the pending counts and returns how many deliveries are
// still not counted (kept for a later flush). If ctx ends while another
// flush runs, it writes nothing and, unless closed, arms a later one.
func (c *repeatCounts) flush(ctx context.Context) (left int64) {
	select {
	case c.flushing <- struct{}{}:
	case <-ctx.Done():
		return c.gaveUp()
	}
	defer func() { <-c.flushing }()
	c.mu.Lock()
	batch := c.pending
	c.pending = map[string]int64{}
	if c.timer != nil { // armed since: this flush takes its counts
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	if len(batch) == 0 {
		return 0
	}
	var failed error
	kept := map[string]int64{}
	for id, err := range c.write(ctx, batch) {
		if docstore.IsNotFound(err) {
			// Deleted since: its repeats were answered for an event
			// published before; the next takes the whole path again.
			c.gone(id)
			c.logger.WarnContext(ctx, "webhook event record gone; its repeats' count dropped", "stripe_event_id", id, "deliveries", batch[id])
			continue
		}
		kept[id], failed = batch[id], err
	}
	if len(kept) == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range kept {
		c.pending[id] += n
		left += n
	}
	if !c.closed {
		c.schedule(countRetryDelays * c.delay)
	}
	c.logger.WarnContext(ctx, "repeat deliveries not counted yet; kept for a later try", "events", len(kept), "deliveries", left, "error", failed.Error())
	return left
}

// gaveUp arms a later flush for what is pending, unless closed, and
// returns how many deliveries wait to be counted.
func (c *repeatCounts) gaveUp() (n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.pending {
		n += d
	}
	if n > 0 && !c.closed {
		c.schedule(countRetryDelays * c.delay)
	}
	return n
}

// close writes what is pending, within closeCountTimeout (a flush already
// running included); repeats after it are counted by their callers.
func (c *repeatCounts) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeCountTimeout)
	defer cancel()
	if left := c.flush(ctx); left > 0 {
		c.logger.Error("repeat deliveries left uncounted at shutdown", "deliveries", left)
	}
}
