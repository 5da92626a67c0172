package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/memory"
	"fulfillment/shared/testsupport/docstoretest"
)

func TestContract(t *testing.T) {
	docstoretest.Run(t, func(*testing.T) docstore.DB { return memory.New() })
}

func TestContractWithEveryFirstAttemptRerun(t *testing.T) {
	docstoretest.Run(t, func(*testing.T) docstore.DB {
		db := memory.New()
		db.RerunFirstAttempt = true
		return db
	})
}

// recorder is a docstoretest.T that keeps failures instead of failing.
type recorder struct {
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func runCase(name string, db docstore.DB) []string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range docstoretest.Cases {
			if c.Name == name {
				c.Run(r, db)
				return
			}
		}
		r.Errorf("no case %s", name)
	}()
	<-done
	return r.failed
}

// TestContractCatchesBrokenAdapters shows each semantic's case failing on an
// adapter that breaks that semantic: the suite can fail.
func TestContractCatchesBrokenAdapters(t *testing.T) {
	for _, b := range []struct {
		semantic, caseName string
		broken             func() docstore.DB
	}{
		{"no isolation: transactions write through at once", "ConflictingTransactionsRetry", func() docstore.DB { return writeThrough{memory.New()} }},
		{"an aborted attempt's writes stay", "CallbackMayRunMoreThanOnce", func() docstore.DB {
			db := memory.New()
			db.RerunFirstAttempt = true
			return leakyAttempts{db}
		}},
		{"no isolation: a failed callback's writes stay", "FailedTransactionLeavesNothing", func() docstore.DB { return writeThrough{memory.New()} }},
		{"reads see the latest data, not a snapshot", "ReadsSeeTheTransactionsSnapshot", func() docstore.DB { return writeThrough{memory.New()} }},
		{"read after write allowed", "ReadAfterWriteIsRefused", func() docstore.DB { return writeThrough{memory.New()} }},
		{"Create overwrites", "CreateFailsOnExisting", func() docstore.DB { return createIsSet{memory.New()} }},
		{"DeleteIf deletes what changed since its read", "DeleteIfDeletesOnlyWhatItRead", func() docstore.DB { return blindDeleteIf{memory.New()} }},
		{"Increment reads, then writes", "IncrementLosesNone", func() docstore.DB { return readThenSet{memory.New()} }},
		{"Set merges into the document", "ConcurrentSetsReplaceAndDeletesRemove", func() docstore.DB { return setMerges{memory.New()} }},
		{"Prefetch answers from a copy kept across attempts", "PrefetchedReadsAreTheAttemptsReads", func() docstore.DB {
			return stalePrefetch{DB: memory.New(), copies: memory.New()}
		}},
	} {
		t.Run(b.caseName, func(t *testing.T) {
			failures := runCase(b.caseName, b.broken())
			if len(failures) == 0 {
				t.Fatalf("%s passed on a broken adapter (%s)", b.caseName, b.semantic)
			}
			t.Logf("%s on an adapter with %s fails as it must: %s", b.caseName, b.semantic, strings.Join(failures, "; "))
		})
	}
}

// writeThrough runs a "transaction" straight on the store: every write
// lands at once, nothing is retried or rolled back.
type writeThrough struct{ *memory.DB }

func (w writeThrough) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	return fn(ctx, direct{ctx, w.DB})
}

type direct struct {
	ctx context.Context
	db  *memory.DB
}

func (d direct) Get(c, id string, v any) error    { return d.db.Get(d.ctx, c, id, v) }
func (d direct) Create(c, id string, v any) error { return d.db.Create(d.ctx, c, id, v) }
func (d direct) Set(c, id string, v any) error    { return d.db.Set(d.ctx, c, id, v) }
func (d direct) Delete(c, id string) error        { return d.db.Delete(d.ctx, c, id) }
func (d direct) Prefetch(...docstore.Key) error   { return nil }

// stalePrefetch answers the Gets of prefetched documents from copies made
// at their first Prefetch, whatever attempt or transaction asks later.
type stalePrefetch struct {
	*memory.DB
	copies *memory.DB
}

func (s stalePrefetch) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	return s.DB.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error { return fn(ctx, staleTx{tx, ctx, s.copies}) })
}

type staleTx struct {
	docstore.Tx
	ctx    context.Context
	copies *memory.DB
}

func (s staleTx) Prefetch(keys ...docstore.Key) error {
	for _, k := range keys {
		var doc map[string]any
		if err := s.Tx.Get(k.Collection, k.ID, &doc); err == nil {
			_ = s.copies.Create(s.ctx, k.Collection, k.ID, doc) // the first copy stays
		}
	}
	return s.Tx.Prefetch(keys...)
}

func (s staleTx) Get(c, id string, v any) error {
	if err := s.copies.Get(s.ctx, c, id, v); err == nil {
		return nil
	}
	return s.Tx.Get(c, id, v)
}

// createIsSet turns Create into Set.
type createIsSet struct{ *memory.DB }

func (c createIsSet) Create(ctx context.Context, coll, id string, v any) error {
	return c.DB.Set(ctx, coll, id, v)
}

func (c createIsSet) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	return c.DB.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error { return fn(ctx, setTx{tx}) })
}

type setTx struct{ docstore.Tx }

func (s setTx) Create(c, id string, v any) error { return s.Tx.Set(c, id, v) }

// setMerges keeps the fields a Set's document leaves out.
type setMerges struct{ *memory.DB }

func (m setMerges) Set(ctx context.Context, coll, id string, v any) error {
	var old map[string]any
	if err := m.DB.Get(ctx, coll, id, &old); err != nil && !docstore.IsNotFound(err) {
		return err
	}
	if err := m.DB.Set(ctx, coll, id, v); err != nil {
		return err
	}
	var merged map[string]any
	if err := m.DB.Get(ctx, coll, id, &merged); err != nil {
		return err
	}
	for k, v := range old {
		if _, ok := merged[k]; !ok || merged[k] == nil {
			merged[k] = v
		}
	}
	return m.DB.Set(ctx, coll, id, merged)
}

// readThenSet increments by a read and a later write, not atomically.
type readThenSet struct{ *memory.DB }

func (r readThenSet) Increment(ctx context.Context, coll, id, field string, n int64) error {
	var doc map[string]any
	if err := r.DB.Get(ctx, coll, id, &doc); err != nil {
		return err
	}
	cur, _ := doc[field].(float64)
	doc[field] = int64(cur) + n
	time.Sleep(2 * time.Millisecond)
	return r.DB.Set(ctx, coll, id, doc)
}

// leakyAttempts retries conflicting transactions but keeps each attempt's
// writes, as if an aborted attempt had written through.
type leakyAttempts struct{ *memory.DB }

func (l leakyAttempts) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	return l.DB.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		return fn(ctx, leakyTx{tx, direct{ctx, l.DB}})
	})
}

type leakyTx struct {
	docstore.Tx
	through direct
}

func (l leakyTx) Set(c, id string, v any) error {
	if err := l.Tx.Set(c, id, v); err != nil {
		return err
	}
	if c == "attempts" {
		return l.through.Set(c, id, v)
	}
	return nil
}

func TestRepositories(t *testing.T) {
	docstoretest.RunRepositories(t, func(*testing.T) docstore.DB {
		db := memory.New()
		db.RerunFirstAttempt = true
		return db
	})
}

// blindDeleteIf deletes whatever is there once match said yes.
type blindDeleteIf struct{ *memory.DB }

func (b blindDeleteIf) DeleteIf(ctx context.Context, coll, id string, v any, match func() bool) (bool, error) {
	if err := b.DB.Get(ctx, coll, id, v); err != nil || !match() {
		return false, nil
	}
	return true, b.DB.Delete(ctx, coll, id)
}
