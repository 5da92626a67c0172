// Package clock is the one place functions read the time from. In
// production it is the system clock. A test stack injects File instead (the
// local stack's main passes it to each function's Setup): every Now reads
// that file, which holds an RFC 3339 instant, so one test can move every
// process through a subscription's year at once. An empty or missing file
// means real time. No function reads FULFILLMENT_CLOCK_FILE itself.
package clock

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// FileEnv names the clock file for the local stack's main and the operator
// CLI; production functions never read it.
const FileEnv = "FULFILLMENT_CLOCK_FILE"

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the real clock.
type System struct{}

// Now is time.Now in UTC.
func (System) Now() time.Time { return time.Now().UTC() }

// Func adapts a function to Clock (tests: clock.Func(func() time.Time { return t })).
type Func func() time.Time

// Now calls f.
func (f Func) Now() time.Time { return f().UTC() }

// FromEnv returns the file clock when FULFILLMENT_CLOCK_FILE is set, else
// System. For test mains and the operator CLI only: a function's Setup takes
// its clock as an injected hook (entrypoint.Hooks) and never calls this.
func FromEnv() Clock {
	if path := os.Getenv(FileEnv); path != "" {
		return &File{Path: path}
	}
	return System{}
}

// File reads the time from a file shared by every process of a test stack.
type File struct {
	Path string
}

// Now is the instant in the file, or the real time when the file is empty,
// missing or unreadable. The file is small: it is read on every call.
func (f *File) Now() time.Time {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return time.Now().UTC()
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Now().UTC()
	}
	return at.UTC()
}

// Set writes t into the clock file at path: every process reading it moves
// to t. The write goes through a rename so no reader sees half a time.
func Set(path string, t time.Time) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("clock.Set: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("clock.Set: %w", err)
	}
	return nil
}
