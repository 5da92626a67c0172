package firestore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/testsupport/docstoretest"
	"fulfillment/shared/testsupport/emulator"
)

func TestMain(m *testing.M) { emulator.RunTests(m) }

func open(t *testing.T) docstore.DB {
	db, err := firestore.Open(context.Background(), emulator.NewProject("contract"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRepositories(t *testing.T) { docstoretest.RunRepositories(t, open) }

func TestContract(t *testing.T) { docstoretest.Run(t, open) }

// Concurrent calls are grouped (group.go) yet each keeps its own outcome:
// one existing document refuses its create alone, one absent document is
// not found alone, and every increment counts.
func TestGroupedCallsKeepTheirOwnOutcomes(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	type doc struct {
		N int64 `firestore:"n"`
	}
	if err := db.Create(ctx, "grouped", "d3", doc{N: 100}); err != nil {
		t.Fatal(err)
	}
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = db.Create(ctx, "grouped", fmt.Sprint("d", i), doc{N: int64(i)}) }()
	}
	wg.Wait()
	for i, err := range errs {
		if want := i == 3; docstore.IsAlreadyExists(err) != want || (!want && err != nil) {
			t.Errorf("create d%d: %v (want already exists: %v)", i, err, want)
		}
	}
	for i := range n {
		wg.Add(2)
		go func() { defer wg.Done(); errs[i] = db.Increment(ctx, "grouped", fmt.Sprint("d", i), "n", 1000) }()
		go func() { defer wg.Done(); _ = db.Increment(ctx, "grouped", "d0", "n", 1) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("increment d%d: %v", i, err)
		}
	}
	gets := make([]doc, n+1)
	getErrs := make([]error, n+1)
	for i := range n + 1 {
		wg.Add(1)
		go func() { defer wg.Done(); getErrs[i] = db.Get(ctx, "grouped", fmt.Sprint("d", i), &gets[i]) }()
	}
	wg.Wait()
	for i := range n {
		want := int64(i) + 1000
		switch i {
		case 0:
			want += n
		case 3:
			want = 1100
		}
		if getErrs[i] != nil || gets[i].N != want {
			t.Errorf("d%d: %+v, %v; want n=%d", i, gets[i], getErrs[i], want)
		}
	}
	if !docstore.IsNotFound(getErrs[n]) {
		t.Errorf("absent d%d: %v, want ErrNotFound", n, getErrs[n])
	}
}
