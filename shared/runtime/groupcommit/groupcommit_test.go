package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A lone request is sent at once, alone: nothing waits for company.
func TestLoneRequestGoesAtOnceAlone(t *testing.T) {
	var calls [][]int
	g := New(func(_ context.Context, items []int) []error {
		calls = append(calls, items)
		return make([]error, len(items))
	}, 1, 10, time.Second)
	for i := range 3 {
		if err := g.Do(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 3 || len(calls[0]) != 1 || len(calls[2]) != 1 || calls[2][0] != 2 {
		t.Fatalf("calls = %v, want three calls of one item each", calls)
	}
}

// Requests arriving while the flight is busy go together in the next call,
// each gets its own outcome, and no call exceeds the item limit.
func TestRequestsDuringAFlightGoTogether(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var calls [][]int
	g := New(func(_ context.Context, items []int) []error {
		mu.Lock()
		first := len(calls) == 0
		calls = append(calls, items)
		mu.Unlock()
		if first {
			<-release
		}
		errs := make([]error, len(items))
		for i, v := range items {
			if v%2 == 1 {
				errs[i] = errors.New("odd")
			}
		}
		return errs
	}, 1, 4, time.Second)
	var wg sync.WaitGroup
	results := make([]error, 7)
	wg.Add(1)
	go func() { defer wg.Done(); results[0] = g.Do(context.Background(), 0) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
	for i := 1; i < 7; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = g.Do(context.Background(), i) }()
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == 6 })
	close(release)
	wg.Wait()
	if len(calls) != 3 || len(calls[1]) != 4 || len(calls[2]) != 2 {
		t.Fatalf("calls = %v, want [0] then 4 then 2 items", calls)
	}
	for i, err := range results {
		if (err != nil) != (i%2 == 1) {
			t.Errorf("request %d: err = %v", i, err)
		}
	}
}

// A caller whose context ends stops waiting; the others still get theirs.
func TestCallerContextEndsTheWaitOnly(t *testing.T) {
	release := make(chan struct{})
	g := New(func(_ context.Context, items []int) []error {
		<-release
		return make([]error, len(items))
	}, 1, 10, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Do(context.Background(), 1) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.flights == 1 && len(g.pending) == 0 })
	waiter := make(chan error, 1)
	go func() { waiter <- g.Do(ctx, 2) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == 1 })
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("leader got %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// One caller's items go in one call when a flight is free, each with its
// own outcome; while the flight is busy they wait and go together.
func TestOneCallersItemsGoTogether(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var calls [][]int
	g := New(func(_ context.Context, items []int) []error {
		mu.Lock()
		first := len(calls) == 0
		calls = append(calls, items)
		mu.Unlock()
		if first {
			<-release
		}
		errs := make([]error, len(items))
		for i, v := range items {
			if v < 0 {
				errs[i] = errors.New("negative")
			}
		}
		return errs
	}, 1, 10, time.Second)
	done1, done2 := make(chan []error), make(chan []error)
	go func() { done1 <- g.DoAll(context.Background(), []int{1, -2, 3}) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
	go func() { done2 <- g.DoAll(context.Background(), []int{4, 5}) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == 2 })
	close(release)
	first, second := <-done1, <-done2
	if len(calls) != 2 || len(calls[0]) != 3 || len(calls[1]) != 2 {
		t.Fatalf("calls = %v, want [1 -2 3] then [4 5]", calls)
	}
	if first[0] != nil || first[1] == nil || first[2] != nil || second[0] != nil || second[1] != nil {
		t.Fatalf("outcomes %v / %v, want only -2 failed", first, second)
	}
}

// Many callers at once, as a busy webhook has them: each item is sent
// exactly once, each caller gets its own item's outcome, and no more
// flights than allowed are ever in the air. Run with -race (make
// test-race), this is also what checks the group's locking.
func TestManyCallersEachGetTheirOwnOutcome(t *testing.T) {
	const callers, each, maxFlights = 32, 100, 2
	var mu sync.Mutex
	sent := map[int]int{}
	inAir, mostInAir := 0, 0
	g := New(func(_ context.Context, items []int) []error {
		mu.Lock()
		inAir++
		mostInAir = max(mostInAir, inAir)
		for _, v := range items {
			sent[v]++
		}
		mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		errs := make([]error, len(items))
		for i, v := range items {
			if v%3 == 0 {
				errs[i] = errors.New("refused")
			}
		}
		mu.Lock()
		inAir--
		mu.Unlock()
		return errs
	}, maxFlights, 8, time.Second)
	var wg sync.WaitGroup
	wrong := make(chan string, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := c*each + i
				if err := g.Do(context.Background(), v); (err != nil) != (v%3 == 0) {
					wrong <- fmt.Sprintf("item %d: err = %v", v, err)
				}
			}
		}()
	}
	wg.Wait()
	close(wrong)
	for w := range wrong {
		t.Error(w)
	}
	if len(sent) != callers*each || mostInAir > maxFlights {
		t.Fatalf("%d distinct items sent of %d, %d flights at once (at most %d)", len(sent), callers*each, mostInAir, maxFlights)
	}
	for v, n := range sent {
		if n != 1 {
			t.Fatalf("item %d sent %d times", v, n)
		}
	}
}
