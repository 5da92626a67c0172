// Package storetest gives component tests their repositories: on a fresh
// in-memory database by default (milliseconds, no JVM), or on the Firestore
// emulator when FULFILLMENT_TEST_STORE=firestore, so the same tests can be
// run on the real adapter.
package storetest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"fulfillment/shared/adapters/memory"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/testsupport/emulator"
)

// Env selects the adapter: "firestore" for the emulator, else memory.
const Env = "FULFILLMENT_TEST_STORE"

func onFirestore() bool { return os.Getenv(Env) == "firestore" }

// RunTests is a TestMain body: it starts the emulators only when the tests
// run on Firestore and none are running.
func RunTests(m *testing.M) { os.Exit(Run(m)) }

// Run is RunTests without the exit.
func Run(m *testing.M) int {
	if onFirestore() {
		return emulator.Run(m)
	}
	return m.Run()
}

// Open returns repositories of the test's own, closed when it ends. In
// memory every transaction's first attempt is thrown away and its callback
// run again, as Firestore may do under contention, so a test passes only if
// its callbacks are safe to repeat.
func Open(t testing.TB, prefix string) *store.Store {
	t.Helper()
	if onFirestore() {
		return emulator.OpenStore(t, prefix)
	}
	db := memory.New()
	db.RerunFirstAttempt = true
	return store.New(db)
}

// Lookup reads collection/id into a T; false when there is no such document.
func Lookup[T any](t testing.TB, st *store.Store, collection, id string) (T, bool) {
	t.Helper()
	var v T
	err := st.Get(context.Background(), nil, collection, id, &v)
	if store.IsNotFound(err) {
		return v, false
	}
	if err != nil {
		t.Fatal(fmt.Errorf("storetest.Lookup %s/%s: %w", collection, id, err))
	}
	return v, true
}
