package clock

import (
	"path/filepath"
	"testing"
	"time"
)

func TestFileClockFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	t.Setenv(FileEnv, path)
	c := FromEnv()
	if _, ok := c.(*File); !ok {
		t.Fatalf("FromEnv with %s set gave %T", FileEnv, c)
	}
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Fatalf("no file: Now is %s away from real time", d)
	}
	for _, want := range []time.Time{
		time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), // back in time too
	} {
		if err := Set(path, want); err != nil {
			t.Fatal(err)
		}
		if got := c.Now(); !got.Equal(want) {
			t.Fatalf("after Set(%s) Now = %s", want, got)
		}
	}
}

func TestWithoutTheVariableItIsTheSystemClock(t *testing.T) {
	t.Setenv(FileEnv, "")
	if _, ok := FromEnv().(System); !ok {
		t.Fatalf("FromEnv = %T, want System", FromEnv())
	}
}
