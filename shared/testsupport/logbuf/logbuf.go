// Package logbuf is a log sink tests read back: concurrent requests,
// background work and child processes may write to it at once.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it; the zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
