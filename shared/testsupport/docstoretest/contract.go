// Package docstoretest is the contract suite of the docstore port: every
// adapter (Firestore on the emulator, memory) runs the same cases, and each
// case fails on an adapter that breaks its semantic (see contract_test.go in
// shared/adapters/memory, which runs the cases against deliberately broken
// adapters and checks that they fail).
package docstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// T is what a case needs of a test: testing.T, or a recorder.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Case is one semantic, checked on a fresh, empty store.
type Case struct {
	Name string
	Run  func(t T, db docstore.DB)
}

// Run runs every case against a fresh store from open.
func Run(t *testing.T, open func(t *testing.T) docstore.DB) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Run(t, open(t))
		})
	}
}

// Cases are the semantics every adapter keeps.
var Cases = []Case{
	{"RoundTripByFirestoreTags", roundTrip},
	{"GetOfAbsentIsNotFound", absent},
	{"GetAllReadsPresentAndAbsent", getAll},
	{"CreateFailsOnExisting", createFailsOnExisting},
	{"ConflictingTransactionsRetry", conflictingRetry},
	{"CallbackMayRunMoreThanOnce", callbackReruns},
	{"FailedTransactionLeavesNothing", failedLeavesNothing},
	{"ReadsSeeTheTransactionsSnapshot", snapshotReads},
	{"ReadAfterWriteIsRefused", readAfterWrite},
	{"PrefetchedReadsAreTheAttemptsReads", prefetchedReads},
	{"QueryFiltersOrdersPages", queryPages},
	{"QueryNestedEqualityAndCount", queryNested},
	{"Subcollections", subcollections},
	{"DeleteIfDeletesOnlyWhatItRead", deleteIf},
	{"IncrementLosesNone", incrementLosesNone},
	{"ConcurrentSetsReplaceAndDeletesRemove", concurrentSetsAndDeletes},
}

type account struct {
	Name     string         `firestore:"name"`
	Balance  int64          `firestore:"balance"`
	Due      *time.Time     `firestore:"due_at"`
	Since    time.Time      `firestore:"since"`
	Owner    owner          `firestore:"owner"`
	Tags     []string       `firestore:"tags"`
	Extra    map[string]int `firestore:"extra"`
	Loose    map[string]any `firestore:"loose"`
	Internal string         `firestore:"-"`
}

type owner struct {
	Namespace string `firestore:"namespace_id"`
}

var ctx = context.Background()

// ctxT is a callback's context type.
type ctxT = context.Context

func must(t T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func roundTrip(t T, db docstore.DB) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
	in := account{Name: "a", Balance: 42, Due: &at, Since: at, Owner: owner{"ns-1"}, Tags: []string{"x"}, Extra: map[string]int{"k": 1}, Loose: map[string]any{"at": at}, Internal: "not stored"}
	must(t, db.Set(ctx, "accounts", "a", in), "set")
	var out account
	must(t, db.Get(ctx, "accounts", "a", &out), "get")
	want := at.UTC().Truncate(time.Microsecond)
	if out.Name != "a" || out.Balance != 42 || out.Owner.Namespace != "ns-1" || len(out.Tags) != 1 || out.Extra["k"] != 1 {
		t.Errorf("read back %+v, want the fields written", out)
	}
	if out.Internal != "" {
		t.Errorf("a field tagged firestore:\"-\" was stored: %q", out.Internal)
	}
	if !out.Since.Equal(want) || out.Due == nil || !out.Due.Equal(want) {
		t.Errorf("times read back as %v / %v, want %v (Firestore keeps microseconds)", out.Since, out.Due, want)
	}
	if s, _ := out.Loose["at"].(string); s != "" && s != want.Format(time.RFC3339Nano) {
		t.Errorf("a time inside a map read back as %q, want %s", s, want.Format(time.RFC3339Nano))
	}
	// Another shape with the same field names reads the same document.
	var narrow struct {
		Balance int64 `firestore:"balance"`
	}
	must(t, db.Get(ctx, "accounts", "a", &narrow), "get narrow")
	var asMap map[string]any
	must(t, db.Get(ctx, "accounts", "a", &asMap), "get map")
	if narrow.Balance != 42 || asMap["name"] != "a" {
		t.Errorf("narrow %+v, map %v: want the fields by their firestore names", narrow, asMap)
	}
	must(t, db.Set(ctx, "accounts", "a", map[string]any{"name": "b"}), "replace")
	out = account{}
	must(t, db.Get(ctx, "accounts", "a", &out), "get replaced")
	if out.Name != "b" || out.Balance != 0 {
		t.Errorf("after Set of a new document: %+v, want the old fields gone", out)
	}
}

func absent(t T, db docstore.DB) {
	var a account
	if err := db.Get(ctx, "accounts", "nobody", &a); !docstore.IsNotFound(err) {
		t.Errorf("Get of an absent document: %v, want ErrNotFound", err)
	}
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error { return tx.Get("accounts", "nobody", &a) })
	if !docstore.IsNotFound(err) {
		t.Errorf("Get of an absent document in a transaction: %v, want ErrNotFound", err)
	}
	must(t, db.Set(ctx, "accounts", "gone", account{Name: "g"}), "set")
	must(t, db.Delete(ctx, "accounts", "gone"), "delete")
	if err := db.Get(ctx, "accounts", "gone", &a); !docstore.IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	must(t, db.Delete(ctx, "accounts", "never"), "delete of an absent document")
}

// getAll reads several documents at once: a present one decoded, an
// absent one only not Found; none at all is no error.
func getAll(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "all-a", account{Name: "a", Balance: 7}), "set")
	must(t, db.Set(ctx, "ledgers", "all-l", map[string]any{"lines": 2}), "set")
	var a account
	var l map[string]any
	var none account
	reads := []*docstore.Read{
		{Collection: "accounts", ID: "all-a", Into: &a},
		{Collection: "accounts", ID: "all-nobody", Into: &none, Found: true},
		{Collection: "ledgers", ID: "all-l", Into: &l},
	}
	must(t, db.GetAll(ctx, reads), "get all")
	if !reads[0].Found || a.Name != "a" || a.Balance != 7 {
		t.Errorf("present account: found %v, read %+v", reads[0].Found, a)
	}
	if reads[1].Found || none.Name != "" {
		t.Errorf("absent account: found %v, read %+v; want not found, nothing read", reads[1].Found, none)
	}
	if !reads[2].Found || l["lines"] != int64(2) && l["lines"] != float64(2) {
		t.Errorf("present ledger in another collection: found %v, read %v", reads[2].Found, l)
	}
	must(t, db.GetAll(ctx, nil), "get all of nothing")
}

// deleteIf deletes a matching document unchanged since its read, and
// nothing else: not an absent one, not one match refuses, not one written
// between the read and the delete.
func deleteIf(t T, db docstore.DB) {
	var a account
	holder := func() bool { return a.Name == "holder-1" }
	if deleted, err := db.DeleteIf(ctx, "leases", "none", &a, holder); deleted || err != nil {
		t.Errorf("DeleteIf of an absent document: deleted %t, %v; want false, nil", deleted, err)
	}
	must(t, db.Set(ctx, "leases", "l", account{Name: "holder-2"}), "set")
	if deleted, err := db.DeleteIf(ctx, "leases", "l", &a, holder); deleted || err != nil || a.Name != "holder-2" {
		t.Errorf("DeleteIf of another holder's: deleted %t, %v, read %q", deleted, err, a.Name)
	}
	must(t, db.Set(ctx, "leases", "l", account{Name: "holder-1"}), "set")
	taken := func() bool {
		// Another process takes it between our read and our delete.
		must(t, db.Set(ctx, "leases", "l", account{Name: "holder-3"}), "set between")
		return holder()
	}
	if deleted, err := db.DeleteIf(ctx, "leases", "l", &a, taken); deleted || err != nil {
		t.Errorf("DeleteIf of a document changed since its read: deleted %t, %v; want false, nil", deleted, err)
	}
	if err := db.Get(ctx, "leases", "l", &a); err != nil || a.Name != "holder-3" {
		t.Errorf("the write between read and delete was lost: %+v %v", a, err)
	}
	must(t, db.Set(ctx, "leases", "l", account{Name: "holder-1"}), "set")
	if deleted, err := db.DeleteIf(ctx, "leases", "l", &a, holder); !deleted || err != nil {
		t.Errorf("DeleteIf of the holder's own: deleted %t, %v; want true, nil", deleted, err)
	}
	if err := db.Get(ctx, "leases", "l", &a); !docstore.IsNotFound(err) {
		t.Errorf("Get after DeleteIf: %v, want ErrNotFound", err)
	}
}

func createFailsOnExisting(t T, db docstore.DB) {
	must(t, db.Create(ctx, "accounts", "c", account{Name: "first"}), "create")
	if err := db.Create(ctx, "accounts", "c", account{Name: "second"}); !docstore.IsAlreadyExists(err) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		return tx.Create("accounts", "c", account{Name: "third"})
	})
	if !docstore.IsAlreadyExists(err) {
		t.Errorf("Create in a transaction: %v, want ErrAlreadyExists", err)
	}
	var a account
	must(t, db.Get(ctx, "accounts", "c", &a), "get")
	if a.Name != "first" {
		t.Errorf("document is %q after refused creates, want %q", a.Name, "first")
	}
	// Concurrent creates: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.Create(ctx, "accounts", "race", account{Balance: int64(i)}); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !docstore.IsAlreadyExists(err) {
				t.Errorf("racing Create: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 8 concurrent creates succeeded, want exactly 1", won)
	}
}

// increment adds one to the balance, pausing between read and write so
// that concurrent transactions overlap.
func increment(db docstore.DB, runs *int64, mu *sync.Mutex, marker string) error {
	return db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		mu.Lock()
		*runs++
		attempt := *runs
		mu.Unlock()
		var a account
		if err := tx.Get("accounts", "counter", &a); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
		a.Balance++
		if err := tx.Set("accounts", "counter", a); err != nil {
			return err
		}
		if marker == "" {
			return nil
		}
		return tx.Set("attempts", fmt.Sprintf("%s-%d", marker, attempt), account{Name: marker})
	})
}

func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i) }()
	}
	wg.Wait()
	return errs
}

func conflictingRetry(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "counter", account{}), "seed")
	var runs int64
	var mu sync.Mutex
	const n = 6
	for _, err := range concurrently(n, func(int) error { return increment(db, &runs, &mu, "") }) {
		must(t, err, "increment")
	}
	var a account
	must(t, db.Get(ctx, "accounts", "counter", &a), "get")
	if a.Balance != n {
		t.Errorf("balance %d after %d concurrent increments: updates were lost", a.Balance, n)
	}
}

func callbackReruns(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "counter", account{}), "seed")
	var runs int64
	var mu sync.Mutex
	const n = 6
	for _, err := range concurrently(n, func(i int) error { return increment(db, &runs, &mu, fmt.Sprint("w", i)) }) {
		must(t, err, "increment")
	}
	// Whatever the number of attempts, only the committed ones left writes.
	docs, err := db.Query(ctx, docstore.Query{Collection: "attempts"})
	must(t, err, "query attempts")
	if len(docs) != n {
		t.Errorf("%d attempts left writes, want %d (one per committed transaction; %d callbacks ran)", len(docs), n, runs)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		var a account
		must(t, d.DataTo(&a), "decode")
		if seen[a.Name] {
			t.Errorf("transaction %s committed twice", a.Name)
		}
		seen[a.Name] = true
	}
}

func failedLeavesNothing(t T, db docstore.DB) {
	boom := errors.New("boom")
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		if err := tx.Set("accounts", "half", account{Name: "half"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("RunTx returned %v, want the callback's error", err)
	}
	var a account
	if err := db.Get(ctx, "accounts", "half", &a); !docstore.IsNotFound(err) {
		t.Errorf("a failed transaction's write is visible: %+v (%v)", a, err)
	}
}

// snapshotReads: a writer keeps x == y; a transaction reading x, then y
// while the writer commits in between, must never see them differ.
func snapshotReads(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "x", account{Balance: 0}), "seed x")
	must(t, db.Set(ctx, "accounts", "y", account{Balance: 0}), "seed y")
	writerDone := make(chan error, 1)
	var once sync.Once
	var seen [2]int64
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		var x, y account
		if err := tx.Get("accounts", "x", &x); err != nil {
			return err
		}
		once.Do(func() {
			go func() {
				// A transaction of its own, not nested in the reader's.
				writerDone <- db.RunTx(context.Background(), func(_ context.Context, w docstore.Tx) error {
					var wx, wy account
					if err := w.Get("accounts", "x", &wx); err != nil {
						return err
					}
					if err := w.Get("accounts", "y", &wy); err != nil {
						return err
					}
					if err := w.Set("accounts", "x", account{Balance: wx.Balance + 1}); err != nil {
						return err
					}
					return w.Set("accounts", "y", account{Balance: wy.Balance + 1})
				})
			}()
			// Give the writer its chance to commit between our two reads
			// (Firestore's locks make it wait for us instead).
			select {
			case err := <-writerDone:
				writerDone <- err
			case <-time.After(500 * time.Millisecond):
			}
		})
		if err := tx.Get("accounts", "y", &y); err != nil {
			return err
		}
		seen = [2]int64{x.Balance, y.Balance}
		if x.Balance != y.Balance {
			t.Errorf("one transaction read x=%d and y=%d: its reads are not one snapshot", x.Balance, y.Balance)
		}
		return nil
	})
	must(t, err, "reader")
	must(t, <-writerDone, "writer")
	var x, y account
	must(t, db.Get(ctx, "accounts", "x", &x), "get x")
	must(t, db.Get(ctx, "accounts", "y", &y), "get y")
	if x.Balance != 1 || y.Balance != 1 {
		t.Errorf("after the writer: x=%d y=%d, want 1 and 1 (reader saw %v)", x.Balance, y.Balance, seen)
	}
}

func readAfterWrite(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "r", account{Balance: 1}), "seed")
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		if err := tx.Set("accounts", "r", account{Balance: 2}); err != nil {
			return err
		}
		var a account
		return tx.Get("accounts", "r", &a)
	})
	if err == nil {
		t.Errorf("a read after a write in one transaction was allowed")
	}
	var a account
	must(t, db.Get(ctx, "accounts", "r", &a), "get")
	if a.Balance != 1 {
		t.Errorf("the refused transaction's write landed: balance %d", a.Balance)
	}
}

// prefetchedReads: documents Prefetch read answer the attempt's Gets as
// Gets would (absent ones too), each attempt reads afresh (concurrent
// increments through Prefetch lose none), and Prefetch, or a Get answered
// by it, after a write is refused.
func prefetchedReads(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "counter", account{Name: "counter"}), "seed")
	const n = 6
	for _, err := range concurrently(n, func(int) error {
		return db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
			keys := []docstore.Key{{Collection: "accounts", ID: "counter"}, {Collection: "accounts", ID: "nobody"}, {Collection: "accounts", ID: "counter"}}
			if err := tx.Prefetch(keys...); err != nil {
				return err
			}
			var a, none account
			if err := tx.Get("accounts", "nobody", &none); !docstore.IsNotFound(err) {
				return fmt.Errorf("Get of a prefetched absent document: %v, want ErrNotFound", err)
			}
			if err := tx.Get("accounts", "counter", &a); err != nil {
				return err
			}
			if a.Name != "counter" {
				return fmt.Errorf("prefetched document read back as %+v", a)
			}
			time.Sleep(5 * time.Millisecond) // let the attempts overlap
			a.Balance++
			return tx.Set("accounts", "counter", a)
		})
	}) {
		must(t, err, "increment through Prefetch")
	}
	var a account
	must(t, db.Get(ctx, "accounts", "counter", &a), "get")
	if a.Balance != n {
		t.Errorf("balance %d after %d concurrent increments through Prefetch: an attempt read a stale document", a.Balance, n)
	}
	err := db.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		if err := tx.Prefetch(docstore.Key{Collection: "accounts", ID: "counter"}); err != nil {
			return err
		}
		if err := tx.Set("accounts", "other", account{}); err != nil {
			return err
		}
		var b account
		if err := tx.Get("accounts", "counter", &b); !errors.Is(err, docstore.ErrReadAfterWrite) {
			t.Errorf("Get of a prefetched document after a write: %v, want ErrReadAfterWrite", err)
		}
		if err := tx.Prefetch(docstore.Key{Collection: "accounts", ID: "x"}); !errors.Is(err, docstore.ErrReadAfterWrite) {
			t.Errorf("Prefetch after a write: %v, want ErrReadAfterWrite", err)
		}
		return errors.New("abort")
	})
	if err == nil {
		t.Errorf("the aborted transaction committed")
	}
}

func queryPages(t T, db docstore.DB) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"e", "d", "c", "b", "a"} {
		due := base.Add(time.Duration(i/2) * time.Hour) // e,d at +0; c,b at +1h; a at +2h
		must(t, db.Set(ctx, "accounts", id, account{Name: id, Due: &due, Balance: int64(i)}), "seed")
	}
	must(t, db.Set(ctx, "accounts", "undated", account{Name: "undated"}), "seed undated")
	q := docstore.Query{
		Collection: "accounts",
		Where:      []docstore.Filter{{Field: "due_at", Op: docstore.Le, Value: base.Add(time.Hour)}},
		OrderBy:    []string{"due_at", docstore.DocumentID},
		Limit:      3,
	}
	ids := func(q docstore.Query) []string {
		docs, err := db.Query(ctx, q)
		must(t, err, "query")
		var out []string
		for _, d := range docs {
			out = append(out, d.ID)
		}
		return out
	}
	if got := fmt.Sprint(ids(q)); got != "[d e b]" {
		t.Errorf("first page %s, want [d e b] (due first, then id; undated and later ones left out)", got)
	}
	q.StartAfter = []any{base.Add(time.Hour), "b"}
	if got := fmt.Sprint(ids(q)); got != "[c]" {
		t.Errorf("page after (+1h, b) %s, want [c]", got)
	}
	q.Where = []docstore.Filter{{Field: "balance", Op: docstore.Ge, Value: int64(3)}}
	q.OrderBy, q.StartAfter, q.Limit = []string{"balance"}, nil, 0
	if got := fmt.Sprint(ids(q)); got != "[b a]" {
		t.Errorf("balance >= 3 by balance: %s, want [b a]", got)
	}
	n, err := db.Count(ctx, docstore.Query{Collection: "accounts", Where: []docstore.Filter{{Field: "due_at", Op: docstore.Ge, Value: base.Add(time.Hour)}}})
	must(t, err, "count")
	if n != 3 {
		t.Errorf("count of due_at >= +1h: %d, want 3", n)
	}
}

func queryNested(t T, db docstore.DB) {
	for _, a := range []struct{ id, ns string }{{"p", "ns-1"}, {"q", "ns-2"}, {"r", "ns-1"}} {
		must(t, db.Set(ctx, "accounts", a.id, account{Owner: owner{a.ns}}), "seed")
	}
	docs, err := db.Query(ctx, docstore.Query{Collection: "accounts", Where: []docstore.Filter{{Field: "owner.namespace_id", Op: docstore.Eq, Value: "ns-1"}}})
	must(t, err, "query")
	got := map[string]bool{}
	for _, d := range docs {
		got[d.ID] = true
	}
	if len(got) != 2 || !got["p"] || !got["r"] {
		t.Errorf("owner.namespace_id == ns-1 selected %v, want p and r", got)
	}
	n, err := db.Count(ctx, docstore.Query{Collection: "accounts"})
	must(t, err, "count")
	if n != 3 {
		t.Errorf("count of the collection: %d, want 3", n)
	}
}

func subcollections(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "s", account{Name: "s"}), "parent")
	for i := range 3 {
		must(t, db.Set(ctx, "accounts/s/history", fmt.Sprint("h", i), account{Balance: int64(i)}), "child")
	}
	must(t, db.Set(ctx, "accounts/other/history", "h0", account{Balance: 9}), "other child")
	docs, err := db.Query(ctx, docstore.Query{Collection: "accounts/s/history", OrderBy: []string{"balance"}})
	must(t, err, "query")
	if len(docs) != 3 || docs[0].ID != "h0" || docs[2].ID != "h2" {
		t.Errorf("history of s: %d documents, want h0..h2 in order", len(docs))
	}
	n, err := db.Count(ctx, docstore.Query{Collection: "accounts"})
	must(t, err, "count")
	if n != 1 {
		t.Errorf("a subcollection's documents counted in the parent collection: %d, want 1", n)
	}
}

func incrementLosesNone(t T, db docstore.DB) {
	must(t, db.Set(ctx, "accounts", "i", account{Name: "i", Balance: 5, Extra: map[string]int{"k": 1}}), "seed")
	must(t, db.Increment(ctx, "accounts", "i", "balance", 2), "increment")
	must(t, db.Increment(ctx, "accounts", "i", "extra.k", 3), "increment a nested field")
	var a account
	must(t, db.Get(ctx, "accounts", "i", &a), "get")
	if a.Balance != 7 || a.Extra["k"] != 4 || a.Name != "i" {
		t.Errorf("after increments of 2 and 3: balance %d, extra.k %d, name %q; want 7, 4 and the other fields kept", a.Balance, a.Extra["k"], a.Name)
	}
	must(t, db.Set(ctx, "accounts", "bare", map[string]any{"name": "bare"}), "seed bare")
	must(t, db.Increment(ctx, "accounts", "bare", "balance", 4), "increment a missing field")
	a = account{}
	must(t, db.Get(ctx, "accounts", "bare", &a), "get bare")
	if a.Balance != 4 || a.Name != "bare" {
		t.Errorf("increment of a missing field: balance %d name %q, want 4 and bare", a.Balance, a.Name)
	}
	if err := db.Increment(ctx, "accounts", "nobody", "balance", 1); !docstore.IsNotFound(err) {
		t.Errorf("Increment of an absent document: %v, want ErrNotFound", err)
	}
	if err := db.Get(ctx, "accounts", "nobody", &a); !docstore.IsNotFound(err) {
		t.Errorf("Increment of an absent document created it: %v", err)
	}
	const n = 16
	for _, err := range concurrently(n, func(int) error { return db.Increment(ctx, "accounts", "i", "balance", 1) }) {
		must(t, err, "concurrent increment")
	}
	a = account{}
	must(t, db.Get(ctx, "accounts", "i", &a), "get after concurrent increments")
	if a.Balance != 7+n {
		t.Errorf("balance %d after %d concurrent increments of 7: increments were lost", a.Balance, n)
	}
}

// concurrentSetsAndDeletes writes many documents at once, as concurrent
// deliveries do (the Firestore adapter groups such writes in one request):
// each Set replaces its document whole, each Delete removes its own, and a
// Delete of an absent document is no error.
func concurrentSetsAndDeletes(t T, db docstore.DB) {
	const n = 16
	for i := range n {
		must(t, db.Set(ctx, "accounts", fmt.Sprintf("w-%d", i), account{Name: "v1", Extra: map[string]int{"k": 1}}), "seed")
	}
	errs := concurrently(n, func(i int) error {
		return errors.Join(db.Set(ctx, "accounts", fmt.Sprintf("w-%d", i), account{Name: fmt.Sprintf("v2-%d", i)}),
			db.Set(ctx, "accounts", fmt.Sprintf("d-%d", i), account{Name: "short-lived"}),
			db.Delete(ctx, "accounts", fmt.Sprintf("d-%d", i)),
			db.Delete(ctx, "accounts", fmt.Sprintf("absent-%d", i)))
	})
	for _, err := range errs {
		must(t, err, "concurrent set and delete")
	}
	for i := range n {
		var a account
		must(t, db.Get(ctx, "accounts", fmt.Sprintf("w-%d", i), &a), "get")
		if a.Name != fmt.Sprintf("v2-%d", i) || len(a.Extra) != 0 {
			t.Errorf("w-%d after its Set = %+v, want name v2-%d and no extra: a Set replaces the document", i, a, i)
		}
		if err := db.Get(ctx, "accounts", fmt.Sprintf("d-%d", i), &a); !docstore.IsNotFound(err) {
			t.Errorf("d-%d after its Delete: %v, want ErrNotFound", i, err)
		}
	}
}
