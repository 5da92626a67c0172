package checkoutwebhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/testsupport/counting"
	"fulfillment/shared/testsupport/logbuf"
	"fulfillment/shared/testsupport/storetest"
)

// flakyCounts is a store whose increments fail while it is down, and hang
// while hung is open.
type flakyCounts struct {
	docstore.DB
	down     atomic.Bool
	hung     chan struct{}
	attempts atomic.Int64 // increments tried while down or hung
}

func (f *flakyCounts) Increment(ctx context.Context, collection, id, field string, n int64) error {
	switch {
	case f.down.Load():
		f.attempts.Add(1)
		return errors.New("firestore unavailable")
	case f.hung != nil:
		f.attempts.Add(1)
		select {
		case <-f.hung:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.DB.Increment(ctx, collection, id, field, n)
}

type countsFixture struct {
	fixture
	db    *counting.DB
	flaky *flakyCounts
	logs  *logbuf.Buffer
}

// newCountsFixture serves the webhook with the given count delay on a
// store that counts its commits and can go down.
func newCountsFixture(t *testing.T, delay time.Duration) countsFixture {
	t.Helper()
	flaky := &flakyCounts{DB: storetest.Open(t, "hook").DB}
	db := counting.NewDB(flaky)
	logs := &logbuf.Buffer{}
	fn := New(Deps{Store: store.New(db), Publisher: &pubsub.Recorder{}, Secrets: []string{secret},
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), CountDelay: delay})
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return countsFixture{fixture: fixture{st: store.New(flaky.DB), fn: fn, url: srv.URL}, db: db, flaky: flaky, logs: logs}
}

// deliver sends payload n times and fails unless each is answered 200 with want.
func (fx countsFixture) deliver(t *testing.T, payload []byte, n int, want string) {
	t.Helper()
	for i := range n {
		if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != want {
			t.Fatalf("delivery %d answered %d %v, want 200 %s", i+1, code, answer, want)
		}
	}
}

// seenWithRepeats delivers a checkout event id once (published) and then
// repeats times (duplicates), and returns its payload.
func (fx countsFixture) seenWithRepeats(t *testing.T, id string, repeats int) []byte {
	t.Helper()
	payload := checkoutPayload(id, nil)
	fx.deliver(t, payload, 1, AnswerPublished)
	fx.deliver(t, payload, repeats, AnswerDuplicate)
	return payload
}

func (fx countsFixture) deliveries(t *testing.T, id string) int64 {
	t.Helper()
	rec, ok := fx.record(t, id)
	if !ok {
		t.Fatalf("no record of %s", id)
	}
	return rec.Deliveries
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

// Repeats of a seen event are answered at once and counted together once
// the delay has passed: one write for all of them, not one each.
func TestRepeatsAreCountedTogetherAfterTheDelay(t *testing.T) {
	t.Parallel()
	fx := newCountsFixture(t, time.Second)
	fx.seenWithRepeats(t, "evt_later", 5)
	if got, commits := fx.deliveries(t, "evt_later"), fx.db.Commits(); got != 1 || commits != 1 {
		t.Fatalf("right after the repeats: %d deliveries counted, %d commits; want 1 and 1 (the repeats wait)", got, commits)
	}
	waitUntil(t, "the five repeats not counted", func() bool { return fx.deliveries(t, "evt_later") == 6 })
	if commits := fx.db.Commits(); commits != 2 {
		t.Fatalf("%d commits, want 2: the record, then one increment of the five repeats", commits)
	}
}

// While the store is down the repeats are still answered (their event was
// published before) and their counts kept; a later try writes them.
func TestRepeatCountsOutlastAStoreOutage(t *testing.T) {
	t.Parallel()
	fx := newCountsFixture(t, 20*time.Millisecond)
	payload := fx.seenWithRepeats(t, "evt_outlast", 0)
	fx.flaky.down.Store(true)
	fx.deliver(t, payload, 3, AnswerDuplicate)
	waitUntil(t, "no count tried during the outage", func() bool { return fx.flaky.attempts.Load() > 0 })
	if got := fx.deliveries(t, "evt_outlast"); got != 1 {
		t.Fatalf("%d deliveries counted during the outage, want 1", got)
	}
	fx.flaky.down.Store(false)
	waitUntil(t, "the repeats kept through the outage not counted after it", func() bool { return fx.deliveries(t, "evt_outlast") == 4 })
	if logs := fx.logs.String(); !strings.Contains(logs, "repeat deliveries not counted yet") || !strings.Contains(logs, "firestore unavailable") {
		t.Errorf("the failed count was not logged with its error: %s", logs)
	}
}

// Close writes the counts still waiting; a repeat after it is counted at
// once.
func TestCloseCountsTheRepeatsLeft(t *testing.T) {
	t.Parallel()
	fx := newCountsFixture(t, time.Hour)
	payload := fx.seenWithRepeats(t, "evt_close", 2)
	if err := fx.fn.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fx.deliveries(t, "evt_close"); got != 3 {
		t.Fatalf("%d deliveries counted after Close, want 3", got)
	}
	fx.deliver(t, payload, 1, AnswerDuplicate)
	if got := fx.deliveries(t, "evt_close"); got != 4 {
		t.Fatalf("a repeat after Close: %d deliveries counted, want 4 at once", got)
	}
}

// A Close that cannot write the counts logs how many deliveries went
// uncounted, and returns within its bound.
func TestCloseLogsTheRepeatsItCouldNotCount(t *testing.T) {
	t.Parallel()
	fx := newCountsFixture(t, time.Hour)
	fx.seenWithRepeats(t, "evt_uncounted", 2)
	fx.flaky.down.Store(true)
	fx.closeLeavingUncounted(t, 2)
}

// closeLeavingUncounted closes the webhook and fails unless Close returned
// within its bound and logged n deliveries left uncounted.
func (fx countsFixture) closeLeavingUncounted(t *testing.T, n int) {
	t.Helper()
	start := time.Now()
	if err := fx.fn.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*closeCountTimeout {
		t.Errorf("Close took %v, want it within %v", took, closeCountTimeout)
	}
	want := fmt.Sprintf(`"msg":"repeat deliveries left uncounted at shutdown","deliveries":%d`, n)
	if logs := fx.logs.String(); !strings.Contains(logs, want) {
		t.Errorf("%d uncounted deliveries not logged: %s", n, logs)
	}
}

// A Close while a flush hangs on the store does not wait it out: it gives
// up within its bound and logs the deliveries still waiting behind it.
func TestCloseDoesNotWaitOutAHungFlush(t *testing.T) {
	t.Parallel()
	fx := newCountsFixture(t, 10*time.Millisecond)
	fx.flaky.hung = make(chan struct{})
	defer close(fx.flaky.hung)
	payload := fx.seenWithRepeats(t, "evt_hung", 2)
	waitUntil(t, "no flush reached the store", func() bool { return fx.flaky.attempts.Load() > 0 })
	fx.deliver(t, payload, 1, AnswerDuplicate) // waits behind the hung flush
	fx.closeLeavingUncounted(t, 1)
}

// A background flush that gives up waiting behind another arms a later
// one: its counts do not wait for the next repeat or for shutdown.
func TestAFlushThatGivesUpArmsALaterOne(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	written := map[string]int64{}
	c := newRepeatCounts(func(_ context.Context, counts map[string]int64) map[string]error {
		mu.Lock()
		defer mu.Unlock()
		for id, n := range counts {
			written[id] += n
		}
		return nil
	}, func(string) {}, slog.New(slog.DiscardHandler), time.Millisecond)
	c.flushing <- struct{}{} // another flush is running
	c.mu.Lock()
	c.pending["evt_waiting"] = 2 // what the armed flush, now run, was to write
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // its bound ended while it waited
	if left := c.flush(ctx); left != 2 {
		t.Fatalf("the flush that gave up reports %d deliveries left, want 2", left)
	}
	<-c.flushing // the other flush ends
	waitUntil(t, "the counts of the flush that gave up never written", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return written["evt_waiting"] == 2
	})
}
