package logbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Lines written at once all arrive whole (under -race, without a data race).
func TestConcurrentWritesArriveWhole(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	for i := range 20 {
		if !seen[fmt.Sprintf("line %d", i)] {
			t.Errorf("line %d missing from %q", i, b.String())
		}
	}
	if len(lines) != 20 {
		t.Errorf("%d lines, want 20", len(lines))
	}
}
