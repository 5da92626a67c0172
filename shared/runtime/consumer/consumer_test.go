package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/memory"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/counting"
	"fulfillment/shared/testsupport/storetest"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const deadLetterTopic = "consumer-dead-letter"

func processor(t testing.TB) (*consumer.Processor, *pubsub.Recorder) {
	t.Helper()
	rec := &pubsub.Recorder{}
	return &consumer.Processor{
		// Plain memory: these tests count how often work ran, so no
		// transaction attempt is thrown away and rerun.
		Name: "test-consumer", Journal: journal(t), Publisher: rec,
		DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler),
	}, rec
}

// countedProcessor is processor over db wrapped to count the requests made
// of it (memory.New() for the exact counts the tests assert).
func countedProcessor(t testing.TB, db docstore.DB) (*consumer.Processor, *pubsub.Recorder, *counting.DB) {
	t.Helper()
	counted := counting.NewDB(db)
	p, rec := processor(t)
	p.Journal = store.New(counted)
	return p, rec, counted
}

func journal(t testing.TB) *store.Store {
	if os.Getenv(storetest.Env) == "firestore" {
		return storetest.Open(t, "consumer")
	}
	return store.New(memory.New())
}

func input(t testing.TB, id string) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, "//test/source", "test.input.v1", "", map[string]string{"k": id})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func outgoing(t *testing.T, in event.Event) consumer.Outgoing {
	t.Helper()
	out, err := cloudevent.New(context.Background(), cloudevent.DerivedID(in, "out"), "//test/consumer", "test.output.v1", "", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	return consumer.Outgoing{Topic: "out-topic", Event: out}
}

// setMarker writes a state document inside the transaction.
func setMarker(p *consumer.Processor, id string) func(context.Context, store.Tx) error {
	return func(_ context.Context, tx store.Tx) error {
		return tx.Set("consumer_test_state", id, map[string]any{"done": true})
	}
}

// A write that fails leaves no dedupe claim: the redelivery does the work
// (OpenMeter's issue 5118 claimed the key first and lost the event).
func TestNoDedupeClaimSurvivesAFailedWrite(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	in := input(t, "evt-fail-then-ok")
	boom := errors.New("state write failed")
	err := p.Once(context.Background(), in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		if err := setMarker(p, in.ID())(ctx, tx); err != nil {
			return nil, err
		}
		return []consumer.Outgoing{outgoing(t, in)}, boom
	}})
	if !errors.Is(err, boom) {
		t.Fatalf("Once = %v, want the write's error", err)
	}
	if _, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Processed, "test-consumer_"+cloudevent.Key(in)); found {
		t.Fatal("a dedupe record survived the failed write")
	}
	if _, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), "consumer_test_state", in.ID()); found {
		t.Fatal("half of the failed transaction was written")
	}
	if n := len(rec.On("out-topic")); n != 0 {
		t.Fatalf("%d events published for a failed write", n)
	}

	ran := 0
	redeliver := func() error {
		return p.Once(context.Background(), in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
			ran++
			return []consumer.Outgoing{outgoing(t, in)}, setMarker(p, in.ID())(ctx, tx)
		}})
	}
	if err := redeliver(); err != nil {
		t.Fatal(err)
	}
	if err := redeliver(); err != nil { // a duplicate after success
		t.Fatal(err)
	}
	if ran != 1 {
		t.Fatalf("work ran %d times over two deliveries after the failure, want 1", ran)
	}
	if _, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), "consumer_test_state", in.ID()); !found {
		t.Fatal("the redelivery did not write the state")
	}
	if out := rec.On("out-topic"); len(out) != 2 || out[0].ID() != out[1].ID() {
		t.Fatalf("published %d events, want the recorded one twice (first time and re-published)", len(out))
	}
}

// Work with no outside call and no lease reads its dedupe record once, in
// its transaction: a first delivery makes one read, and a duplicate one
// more, runs nothing and publishes the recorded events again.
func TestPlainWorkReadsItsDedupeRecordOnlyInItsTransaction(t *testing.T) {
	t.Parallel()
	p, rec, db := countedProcessor(t, memory.New())
	in := input(t, "evt-plain")
	ran := 0
	work := consumer.Work{Apply: func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
		ran++
		return []consumer.Outgoing{outgoing(t, in)}, nil
	}}
	if err := p.Once(context.Background(), in, work); err != nil {
		t.Fatal(err)
	}
	if db.Reads() != 1 || db.Commits() != 1 {
		t.Fatalf("first delivery: %d reads, %d commits; want 1 and 1", db.Reads(), db.Commits())
	}
	if err := p.Once(context.Background(), in, work); err != nil {
		t.Fatal(err)
	}
	if db.Reads() != 2 || db.Commits() != 1 || ran != 1 {
		t.Fatalf("after a duplicate: %d reads, %d commits, work ran %d times; want 2, 1, 1", db.Reads(), db.Commits(), ran)
	}
	if out := rec.On("out-topic"); len(out) != 2 || out[0].ID() != out[1].ID() {
		t.Fatalf("published %d events, want the recorded one twice", len(out))
	}
}

// The documents Work names in Reads are read in the transaction's first
// request, with the dedupe record: Apply's Gets of them, a present one and
// an absent one, make no request of their own and read what is stored.
func TestWorksReadsComeWithTheDedupeRecord(t *testing.T) {
	t.Parallel()
	p, _, db := countedProcessor(t, journal(t).DB)
	in := input(t, "evt-reads")
	if err := db.Set(context.Background(), "consumer_test_state", "present", map[string]any{"n": 7}); err != nil {
		t.Fatal(err)
	}
	before := db.Reads()
	var got map[string]any
	var absent error
	work := consumer.Work{
		Reads: []store.Key{{Collection: "consumer_test_state", ID: "present"}, {Collection: "consumer_test_state", ID: "absent"}},
		Apply: func(_ context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
			if err := tx.Get("consumer_test_state", "present", &got); err != nil {
				return nil, err
			}
			var none map[string]any
			absent = tx.Get("consumer_test_state", "absent", &none)
			return nil, tx.Set("consumer_test_state", "written", map[string]any{"n": got["n"]})
		},
	}
	if err := p.Once(context.Background(), in, work); err != nil {
		t.Fatal(err)
	}
	if n := db.Reads() - before; n != 1 {
		t.Fatalf("the delivery made %d read requests, want 1 (the dedupe record with both documents)", n)
	}
	if fmt.Sprint(got["n"]) != "7" || !store.IsNotFound(absent) {
		t.Fatalf("Apply read %v and %v for the absent one; want n=7 and not found", got, absent)
	}
	if w, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), "consumer_test_state", "written"); !found || fmt.Sprint(w["n"]) != "7" {
		t.Fatalf("the transaction wrote %v (found %t), want n=7", w, found)
	}
}

// Work.Again tells the effect whether its version was attempted before:
// false the first time, true on the redelivery after a failed call, when
// that call may have reached the target.
func TestAgainSaysTheVersionWasAttemptedBefore(t *testing.T) {
	t.Parallel()
	p, _ := processor(t)
	in := input(t, "evt-again")
	var seen []bool
	var again bool
	work := consumer.AfterEffect(func(context.Context) error {
		seen = append(seen, again)
		if len(seen) == 1 {
			return errors.New("target timed out")
		}
		return nil
	}, func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
	work.Serialize, work.Version, work.Again = "sub-again", 3, &again
	if err := p.Once(context.Background(), in, work); err == nil {
		t.Fatal("Once = nil after the effect failed")
	}
	if err := p.Once(context.Background(), in, work); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] || !seen[1] {
		t.Fatalf("the effect saw Again %v, want [false true]", seen)
	}
}

// Effect-only work (an outside call, no state change) records its dedupe
// record with one create and no transaction; a redelivery finds it and
// makes no call, and a record another delivery created first is taken as
// done, its call not repeated.
func TestEffectOnlyWorkRecordsItsDeliveryWithOneWrite(t *testing.T) {
	t.Parallel()
	p, _, db := countedProcessor(t, journal(t).DB)
	in := input(t, "evt-effect-only")
	calls := 0
	work := consumer.EffectOnly(func(context.Context) error { calls++; return nil })
	work.Serialize = "event-" + in.ID()
	if err := p.Once(context.Background(), in, work); err != nil {
		t.Fatal(err)
	}
	// Reads: the dedupe record under the lease. Commits: the lease, the
	// record, the lease's release; no transaction reads the record again.
	if db.Reads() != 1 || db.Commits() != 3 || calls != 1 {
		t.Fatalf("first delivery: %d reads, %d commits, %d calls; want 1, 3, 1", db.Reads(), db.Commits(), calls)
	}
	rec, found := storetest.Lookup[store.ProcessedRecord](t, p.Journal.(*store.Store), store.Processed, "test-consumer_"+cloudevent.Key(in))
	if !found || rec.EventID != in.ID() || rec.ExpireAt.IsZero() {
		t.Fatalf("dedupe record %+v (found %t), want one for %s with its expiry", rec, found, in.ID())
	}
	if _, held := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Leases, "test-consumer_"+work.Serialize); held {
		t.Fatal("lease kept after the delivery recorded")
	}
	if err := p.Once(context.Background(), in, work); err != nil || calls != 1 {
		t.Fatalf("redelivery: %v, %d calls; want nil and still 1", err, calls)
	}
	// Another delivery's record lands between this one's check and its own
	// create: the create is refused and the delivery ends as a duplicate.
	other := input(t, "evt-effect-only-raced")
	raced := consumer.EffectOnly(func(ctx context.Context) error {
		calls++
		_, fresh, err := p.Journal.CreateProcessed(ctx, "test-consumer_"+cloudevent.Key(other), store.ProcessedRecord{EventID: other.ID(), Consumer: "other delivery"})
		if err != nil || !fresh {
			t.Errorf("the other delivery's record: fresh %t, %v", fresh, err)
		}
		return nil
	})
	if err := p.Once(context.Background(), other, raced); err != nil {
		t.Fatal(err)
	}
	if rec, _ := storetest.Lookup[store.ProcessedRecord](t, p.Journal.(*store.Store), store.Processed, "test-consumer_"+cloudevent.Key(other)); rec.Consumer != "other delivery" {
		t.Fatalf("the record is %+v, want the other delivery's, not overwritten", rec)
	}
}

// A serialized delivery releases its lease in the transaction that records
// its work, no request of its own: just taken, it cannot have expired and
// passed to another.
func TestSerializedWorkReleasesItsFreshLeaseInItsCommit(t *testing.T) {
	t.Parallel()
	p, _, db := countedProcessor(t, memory.New())
	in := input(t, "evt-serialized")
	err := p.Once(context.Background(), in, consumer.Work{Serialize: "sub-1", Version: 1,
		Apply: func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	// Reads: the dedupe record and the version in one request under the
	// lease (none before it), and the transaction's own. Commits: the
	// lease, the version, the transaction with the lease's delete.
	if db.Reads() != 2 || db.Commits() != 3 {
		t.Fatalf("%d reads, %d commits; want 2 and 3", db.Reads(), db.Commits())
	}
	if _, held := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Leases, "test-consumer_sub-1"); held {
		t.Fatal("lease kept after the delivery committed")
	}
}

// A lease held so long it might have expired and passed to another taker
// is not deleted blind in the transaction: it is released after, only if
// this delivery still holds it. Here a second taker has it by then, and
// keeps it.
func TestSerializedWorkKeepsALeaseThatMayHavePassedOn(t *testing.T) {
	t.Parallel()
	p, _, db := countedProcessor(t, memory.New())
	var late atomic.Bool
	consumer.SetClock(p, func() time.Time {
		if late.Load() {
			return time.Now().Add(consumer.LeaseHeldSurely)
		}
		return time.Now()
	})
	journal := p.Journal.(*store.Store)
	name := "test-consumer_sub-1"
	work := consumer.AfterEffect(func(ctx context.Context) error {
		// The outside call outlasts the lease; another delivery takes it.
		late.Store(true)
		if err := journal.DeleteLease(ctx, name); err != nil {
			return err
		}
		if took, err := journal.TakeLease(ctx, name, "other-holder", time.Minute); err != nil || !took {
			return fmt.Errorf("second taker: took %v, %v", took, err)
		}
		return nil
	}, func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
	work.Serialize, work.Version = "sub-1", 1
	if err := p.Once(context.Background(), input(t, "evt-slow"), work); err != nil {
		t.Fatal(err)
	}
	lease, held := storetest.Lookup[map[string]any](t, journal, store.Leases, name)
	if !held || lease["holder"] != "other-holder" {
		t.Fatalf("lease after a slow delivery = %v (held %v), want the second taker's kept", lease, held)
	}
	if _, done := storetest.Lookup[map[string]any](t, journal, store.Processed, "test-consumer_"+cloudevent.Key(input(t, "evt-slow"))); !done {
		t.Fatal("slow delivery's work not recorded")
	}
	// The lease, the version, the second taker's delete and lease, the
	// transaction: the release deleted nothing.
	if db.Commits() != 5 {
		t.Fatalf("%d commits, want 5", db.Commits())
	}
}

// A transaction that fails leaves the lease to release: a later delivery
// of the same key is not kept waiting for it to expire.
func TestSerializedWorkReleasesItsLeaseWhenItsCommitFails(t *testing.T) {
	t.Parallel()
	p, _, _ := countedProcessor(t, memory.New())
	work := consumer.Work{Serialize: "sub-1", Version: 1,
		Apply: func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, errors.New("state refused") }}
	if err := p.Once(context.Background(), input(t, "evt-refused"), work); err == nil {
		t.Fatal("a failed transaction was acknowledged")
	}
	if _, held := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Leases, "test-consumer_sub-1"); held {
		t.Fatal("lease kept after the delivery's transaction failed")
	}
}

// A duplicate of serialized work is found under the lease, with no read
// before it: its outside call does not run again, the events it recorded
// are published again, and the lease is released. A failed read there is
// an error (redelivered), never an outside call made blind.
// What serialized work's effect reads comes in the request that reads its
// dedupe record under the lease: the effect finds it there, read no more.
func TestSerializedWorkPrefetchesWhatItsEffectReadsWithItsDedupeRecord(t *testing.T) {
	t.Parallel()
	p, _, db := countedProcessor(t, memory.New())
	ctx := context.Background()
	if err := p.Journal.(*store.Store).DB.Set(ctx, "targets", "sub-1", map[string]any{"version": 4}); err != nil {
		t.Fatal(err)
	}
	reads := db.Reads()
	var last struct {
		Version int64 `firestore:"version"`
	}
	var missing map[string]any
	prior := &store.Read{Collection: "targets", ID: "sub-1", Into: &last}
	absent := &store.Read{Collection: "targets", ID: "sub-2", Into: &missing}
	var seen int64 = -1
	var seenAbsent bool
	w := consumer.AfterEffect(func(context.Context) error {
		seen, seenAbsent = last.Version, absent.Found
		return nil
	}, func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
	w.Serialize, w.Version, w.Prefetch = "sub-1", 5, []*store.Read{prior, absent}
	if err := p.Once(ctx, input(t, "evt-prefetch"), w); err != nil {
		t.Fatal(err)
	}
	if !prior.Found || seen != 4 || seenAbsent {
		t.Fatalf("the effect saw version %d (found %t, absent one found %t), want 4 read before it", seen, prior.Found, seenAbsent)
	}
	// Under the lease: one read for the record, the version claim and both
	// prefetched documents; the transaction reads the record once more.
	if got := db.Reads() - reads; got != 2 {
		t.Fatalf("%d reads, want 2 (one before the effect, one in the transaction)", got)
	}

	unleased := consumer.AfterEffect(func(context.Context) error { return nil },
		func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
	unleased.Prefetch = []*store.Read{{Collection: "targets", ID: "sub-1", Into: &last}}
	if err := p.Once(ctx, input(t, "evt-prefetch-unleased"), unleased); !failure.IsPermanent(err) {
		t.Fatalf("prefetch without a lease: %v, want a permanent error (a programming mistake)", err)
	}
}

func TestSerializedDuplicateIsFoundUnderTheLease(t *testing.T) {
	t.Parallel()
	p, rec, db := countedProcessor(t, memory.New())
	in := input(t, "evt-serialized-twice")
	calls := 0
	work := func() consumer.Work {
		w := consumer.AfterEffect(func(context.Context) error { calls++; return nil },
			func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
				return []consumer.Outgoing{outgoing(t, in)}, nil
			})
		w.Serialize, w.Version = "sub-1", 1
		return w
	}
	for range 2 {
		if err := p.Once(context.Background(), in, work()); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("outside call made %d times for a delivery and its duplicate, want 1", calls)
	}
	if out := rec.On("out-topic"); len(out) != 2 || out[0].ID() != out[1].ID() {
		t.Fatalf("published %d events, want the recorded one twice", len(out))
	}
	// The duplicate: the lease taken and deleted, one read under it.
	if db.Reads() != 3 || db.Commits() != 5 {
		t.Fatalf("%d reads, %d commits over both; want 3 (2 + 1) and 5 (3 + 2)", db.Reads(), db.Commits())
	}
	if _, held := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Leases, "test-consumer_sub-1"); held {
		t.Fatal("lease kept after the duplicate")
	}

	unreadable := input(t, "evt-serialized-unread")
	p.Journal = store.New(failingReads{DB: memory.New(), collection: store.Processed})
	if err := p.Once(context.Background(), unreadable, work()); err == nil {
		t.Fatal("a delivery whose dedupe record could not be read was acknowledged")
	}
	if calls != 1 {
		t.Fatalf("outside call made with its dedupe record unread (%d calls)", calls)
	}
}

// failingReads fails every read of one collection outside transactions.
type failingReads struct {
	docstore.DB
	collection string
}

func (f failingReads) Get(ctx context.Context, collection, id string, v any) error {
	if collection == f.collection {
		return errors.New("read failed")
	}
	return f.DB.Get(ctx, collection, id, v)
}

func (f failingReads) GetAll(ctx context.Context, reads []*docstore.Read) error {
	for _, r := range reads {
		if r.Collection == f.collection {
			return errors.New("read failed")
		}
	}
	return f.DB.GetAll(ctx, reads)
}

// A failing effect (the outside call) leaves no claim either.
func TestNoDedupeClaimSurvivesAFailedEffect(t *testing.T) {
	t.Parallel()
	p, _ := processor(t)
	in := input(t, "evt-effect-fails")
	applied := 0
	work := func(effectErr error) consumer.Work {
		return consumer.AfterEffect(
			func(context.Context) error { return effectErr },
			func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
				applied++
				return nil, nil
			})
	}
	if err := p.Once(context.Background(), in, work(errors.New("503"))); err == nil {
		t.Fatal("Once = nil for a failed effect")
	}
	if _, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), store.Processed, "test-consumer_"+cloudevent.Key(in)); found || applied != 0 {
		t.Fatalf("claim recorded %v, applied %d after a failed effect", found, applied)
	}
	if err := p.Once(context.Background(), in, work(nil)); err != nil || applied != 1 {
		t.Fatalf("redelivery: %v, applied %d", err, applied)
	}
}

// The effect's result is handed to the state change as a value, and a
// duplicate delivery neither calls the effect again nor applies anything.
func TestEffectResultIsHandedToApply(t *testing.T) {
	t.Parallel()
	p, _ := processor(t)
	in := input(t, "evt-effect-result")
	type invoice struct{ ID string }
	calls := 0
	var got []invoice
	work := consumer.WithEffect(
		func(context.Context) (invoice, error) {
			calls++
			return invoice{ID: fmt.Sprintf("in_%d", calls)}, nil
		},
		func(ctx context.Context, tx store.Tx, inv invoice) ([]consumer.Outgoing, error) {
			got = append(got, inv)
			return nil, tx.Set("consumer_test_state", in.ID(), map[string]any{"invoice": inv.ID})
		})
	for range 2 {
		if err := p.Once(context.Background(), in, work); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 || len(got) == 0 || got[len(got)-1] != (invoice{ID: "in_1"}) {
		t.Fatalf("effect called %d times, apply got %v; want one call whose result reaches apply", calls, got)
	}
	state, found := storetest.Lookup[map[string]any](t, p.Journal.(*store.Store), "consumer_test_state", in.ID())
	if !found || state["invoice"] != "in_1" {
		t.Fatalf("state = %v (found %v), want the effect's invoice", state, found)
	}
}

// The emulator's pushes carry no deliveryAttempt: the consumer counts failed
// deliveries itself and records the last one in dead_letters.
func TestTransientFailureIsDeadLetteredOnlyOnTheLastAttempt(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	in := input(t, "evt-always-transient")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return errors.New("dependency down")
	}}
	p.MaxDeliveryAttempts = 5
	for attempt := 1; attempt < 5; attempt++ {
		if err := p.Handle(context.Background(), in); err == nil {
			t.Fatalf("attempt %d acknowledged", attempt)
		}
	}
	if n := len(rec.On(deadLetterTopic)); n != 0 {
		t.Fatalf("dead-lettered early: %d", n)
	}
	if err := p.Handle(context.Background(), in); err != nil {
		t.Fatalf("last attempt: %v, want acknowledged", err)
	}
	dl, found := storetest.Lookup[consumer.DeadLetter](t, p.Journal.(*store.Store), store.DeadLetters, "test-consumer_"+cloudevent.Key(in))
	if !found || dl.Reason != "gave up after 5 delivery attempts: dependency down" || dl.EventID != in.ID() {
		t.Fatalf("dead letter %+v found=%v", dl, found)
	}
	if n := len(rec.On(deadLetterTopic)); n != 1 {
		t.Fatalf("dead-letter topic got %d", n)
	}
}

// Pub/Sub's own count (the push's deliveryAttempt) is trusted when it is ahead.
func TestPubSubDeliveryAttemptCounts(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	in := input(t, "evt-late-attempt")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return errors.New("dependency down")
	}}
	if err := p.Handle(cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{Attempt: 3}), in); err == nil {
		t.Fatal("attempt 3 of 10 acknowledged")
	}
	if err := p.Handle(cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{Attempt: consumer.DefaultMaxDeliveryAttempts}), in); err != nil {
		t.Fatalf("last attempt: %v", err)
	}
	if n := len(rec.On(deadLetterTopic)); n != 1 {
		t.Fatalf("dead-letter topic got %d", n)
	}
}

// Pub/Sub counts attempts per message: two messages carrying one event (a
// repeat re-published it) use up their attempts each on its own, so the
// copy that failed last is not dead-lettered for the other's failures.
func TestCopiesOfOneEventCountTheirAttemptsApart(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	in := input(t, "evt-two-copies")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return errors.New("dependency down")
	}}
	p.MaxDeliveryAttempts = 3
	first := cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{MessageID: "101"})
	second := cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{MessageID: "102"})
	for attempt := 1; attempt < 3; attempt++ {
		if err := p.Handle(first, in); err == nil {
			t.Fatalf("first copy, attempt %d acknowledged", attempt)
		}
	}
	if err := p.Handle(second, in); err == nil {
		t.Fatal("second copy's first attempt acknowledged: it was counted with the first copy's")
	}
	if n := len(rec.On(deadLetterTopic)); n != 0 {
		t.Fatalf("dead-lettered early: %d", n)
	}
	if err := p.Handle(first, in); err != nil {
		t.Fatalf("first copy's last attempt: %v, want acknowledged", err)
	}
	if n := len(rec.On(deadLetterTopic)); n != 1 {
		t.Fatalf("dead-letter topic got %d, want the first copy's last attempt", n)
	}
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	in := input(t, "evt-poison")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return failure.Permanentf("bad payload")
	}}
	if err := p.Handle(cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{Attempt: 1}), in); err != nil {
		t.Fatalf("Handle = %v, want acknowledged", err)
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, p.Journal.(*store.Store), store.DeadLetters, "test-consumer_"+cloudevent.Key(in)); !found || len(rec.On(deadLetterTopic)) != 1 {
		t.Fatal("poison input not dead-lettered")
	}
}

// While one delivery holds a subscription's lease (its outside call in
// flight), another for the same subscription is refused as busy, and runs
// once the first has committed.
func TestSerializedWorkRefusesAConcurrentDelivery(t *testing.T) {
	t.Parallel()
	p, _ := processor(t)
	first, second := input(t, "evt-v1"), input(t, "evt-v2")
	inEffect, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		w := consumer.AfterEffect(
			func(context.Context) error { close(inEffect); <-release; return nil },
			func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
		w.Serialize = "sub-1"
		done <- p.Once(context.Background(), first, w)
	}()
	<-inEffect
	noop := consumer.Work{Serialize: "sub-1", Apply: func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil }}
	if err := p.Once(context.Background(), second, noop); !errors.Is(err, consumer.ErrBusy) {
		t.Fatalf("concurrent delivery: %v, want ErrBusy", err)
	}
	if err := p.Once(context.Background(), first, noop); !errors.Is(err, consumer.ErrBusy) {
		t.Fatalf("concurrent duplicate of the same event: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := p.Once(context.Background(), second, noop)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second delivery still refused: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The failure's text goes to the logs and to dead_letters: an e-mail address
// or a secret in it is scrubbed from both.
func TestDeadLetterAndLogsScrubEmailsAndSecrets(t *testing.T) {
	t.Parallel()
	p, _ := processor(t)
	var logs bytes.Buffer
	p.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	in := input(t, "evt-leaky")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return failure.Permanentf("crm refused buyer@example.com: session 00Dxx0000001gPL!AQ4AQFakeToken expired")
	}}
	if err := p.Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle = %v, want nil (dead-lettered)", err)
	}
	dl, found := storetest.Lookup[consumer.DeadLetter](t, p.Journal.(*store.Store), store.DeadLetters, "test-consumer_"+cloudevent.Key(in))
	if !found {
		t.Fatal("not dead-lettered")
	}
	for _, leak := range []string{"buyer@example.com", "AQ4AQFakeToken"} {
		if strings.Contains(dl.Reason, leak) {
			t.Errorf("dead letter reason %q keeps %q", dl.Reason, leak)
		}
		if strings.Contains(logs.String(), leak) {
			t.Errorf("logs keep %q: %s", leak, logs.String())
		}
	}
	if !strings.Contains(dl.Reason, "crm refused") || !strings.Contains(logs.String(), "crm refused") {
		t.Errorf("the failure itself is gone: reason %q, logs %s", dl.Reason, logs.String())
	}

	// A transient failure is logged the same way.
	logs.Reset()
	p.Routes["test.input.v1"] = func(context.Context, event.Event) error {
		return errors.New("upsert of buyer@example.com timed out")
	}
	if err := p.Handle(cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{Attempt: 1}), input(t, "evt-leaky-2")); err == nil {
		t.Fatal("Handle = nil for a transient failure")
	}
	if strings.Contains(logs.String(), "buyer@example.com") || !strings.Contains(logs.String(), "timed out") {
		t.Errorf("transient failure log: %s", logs.String())
	}
}

// A push that is no event at all is recorded in dead_letters and on the
// dead-letter topic, then acknowledged: Pub/Sub would otherwise retry it
// and move it to its dead-letter topic with nothing recorded.
func TestAnUndecodablePushIsRecordedAndAcknowledged(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	p.Routes = map[string]consumer.HandlerFunc{}
	srv := httptest.NewServer(entrypoint.Serve(&consumer.Base{Processor: p}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for range 2 {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"message": "not a push"`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("answered %d, want 204 once recorded", resp.StatusCode)
		}
	}
	letters, err := store.All[consumer.DeadLetter](context.Background(), p.Journal.(*store.Store), docstore.Query{Collection: store.DeadLetters})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Type != consumer.UndecodableType || !strings.Contains(letters[0].Reason, "undecodable") {
		t.Fatalf("dead letters %+v, want one for the undecodable body (a redelivery is the same record)", letters)
	}
	if n := len(rec.On(deadLetterTopic)); n != 2 {
		t.Fatalf("%d sent to the dead-letter topic, want one per delivery", n)
	}
}

// A delivery awaiting something is parked on its last attempt, not given
// up on: kept in dead_letters under what it awaits, off the dead-letter
// topic; Resume sends it again on the consumer's topic with a fresh count
// of attempts and removes the record.
func TestAwaitingDeliveryIsParkedAndResumed(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	p.Topic, p.MaxDeliveryAttempts = "in-topic", 3
	created := false // things/t1, made just before its creator's Resume
	p.Exists = func(_ context.Context, key string) (bool, error) { return created && key == "things/t1", nil }
	in := input(t, "evt-awaits")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return consumer.Await("things/t1", errors.New("thing t1 not there yet"))
	}}
	for attempt := 1; attempt < 3; attempt++ {
		if err := p.Handle(context.Background(), in); err == nil {
			t.Fatalf("attempt %d acknowledged", attempt)
		}
	}
	if err := p.Handle(context.Background(), in); err != nil {
		t.Fatalf("last attempt: %v, want acknowledged (parked)", err)
	}
	st := p.Journal.(*store.Store)
	key := "test-consumer_" + cloudevent.Key(in)
	dl, found := storetest.Lookup[consumer.DeadLetter](t, st, store.DeadLetters, key)
	if !found || dl.Awaiting != "things/t1" || dl.Reason != "parked after 3 delivery attempts until things/t1 exists: thing t1 not there yet" {
		t.Fatalf("parked record %+v found=%v", dl, found)
	}
	if n := len(rec.On(deadLetterTopic)) + len(rec.On("in-topic")); n != 0 {
		t.Fatalf("published %d events on parking, want none", n)
	}
	if marked, err := st.IsParked(context.Background(), "test-consumer", "things/t1"); err != nil || !marked {
		t.Fatalf("awaited key not marked parked: %v, %v", marked, err)
	}
	if err := p.Resume(context.Background(), "things/t2"); err != nil || len(rec.On("in-topic")) != 0 {
		t.Fatalf("Resume of another key: %v, sent %d", err, len(rec.On("in-topic")))
	}
	created = true
	if err := p.Resume(context.Background(), "things/t1"); err != nil {
		t.Fatal(err)
	}
	if again := rec.On("in-topic"); len(again) != 1 || again[0].ID() != in.ID() || string(again[0].Data()) != string(in.Data()) {
		t.Fatalf("sent again: %v", again)
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, st, store.DeadLetters, key); found {
		t.Fatal("parked record kept after Resume")
	}
	if marked, err := st.IsParked(context.Background(), "test-consumer", "things/t1"); err != nil || marked {
		t.Fatalf("mark kept after Resume: %v, %v", marked, err)
	}
	// Sent again, it has its attempts afresh: the next failure is retried.
	if err := p.Handle(context.Background(), in); err == nil {
		t.Fatal("first attempt after Resume acknowledged: its count was kept")
	}
}

// Resume runs after every purchase, and nearly always nothing is parked:
// then it costs one read, no query of dead_letters.
func TestResumeWhereNothingIsParkedIsOneRead(t *testing.T) {
	t.Parallel()
	p, rec, db := countedProcessor(t, memory.New())
	p.Topic = "in-topic"
	if err := p.Resume(context.Background(), "things/none"); err != nil {
		t.Fatal(err)
	}
	if db.Reads() != 1 || db.Queries() != 0 || db.Commits() != 0 || len(rec.On("in-topic")) != 0 {
		t.Fatalf("Resume with nothing parked: %d reads, %d queries, %d commits, %d sent; want 1 read and nothing else",
			db.Reads(), db.Queries(), db.Commits(), len(rec.On("in-topic")))
	}
}

// Parking looks once more for what the delivery awaits: created between
// the last failure and the parking, it is sent again at once (its creator's
// Resume may have run before the record existed).
func TestAwaitingDeliveryWhoseThingAppearedIsSentAgainAtOnce(t *testing.T) {
	t.Parallel()
	p, rec := processor(t)
	p.Topic, p.MaxDeliveryAttempts = "in-topic", 1
	p.Exists = func(_ context.Context, key string) (bool, error) { return key == "things/t1", nil }
	in := input(t, "evt-raced")
	p.Routes = map[string]consumer.HandlerFunc{"test.input.v1": func(context.Context, event.Event) error {
		return consumer.Await("things/t1", errors.New("thing t1 not there yet"))
	}}
	if err := p.Handle(context.Background(), in); err != nil {
		t.Fatalf("last attempt: %v", err)
	}
	if again := rec.On("in-topic"); len(again) != 1 || again[0].ID() != in.ID() {
		t.Fatalf("sent again: %v, want at once", again)
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, p.Journal.(*store.Store), store.DeadLetters, "test-consumer_"+cloudevent.Key(in)); found {
		t.Fatal("parked record kept though it was sent again")
	}
}
