package main

import (
	"slices"
	"testing"

	"fulfillment/shared/runtime/runtimeenv"
)

func TestTheBenchRestartsWithTheFunctionsGoDebugAddedToItsOwn(t *testing.T) {
	for _, c := range []struct {
		in      []string
		want    []string
		restart bool
	}{
		{[]string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + runtimeenv.GoDebug}, true},
		{[]string{"GODEBUG=http2debug=1", "PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=http2debug=1," + runtimeenv.GoDebug}, true},
		{[]string{"GODEBUG=" + runtimeenv.GoDebug, "PATH=/bin"}, []string{"GODEBUG=" + runtimeenv.GoDebug, "PATH=/bin"}, false},
	} {
		got, restart := withGoDebug(c.in)
		if !slices.Equal(got, c.want) || restart != c.restart {
			t.Errorf("withGoDebug(%q) = %q, %v; want %q, %v", c.in, got, restart, c.want, c.restart)
		}
	}
}
