package faultpoint

import "testing"

func TestParse(t *testing.T) {
	p, err := Parse("consumer.after-commit:0.02, consumer.before-commit:1")
	if err != nil || p["consumer.after-commit"] != 0.02 || p["consumer.before-commit"] != 1 || len(p) != 2 {
		t.Fatalf("Parse = %v, %v", p, err)
	}
	for _, bad := range []string{"x", "x:2", "x:-1", "x:abc"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestCrashIsInertUnlessEnabled(t *testing.T) {
	// The variable alone enables nothing: only a test main's Enable does.
	t.Setenv(EnvVar, "consumer.after-commit:1")
	Crash("consumer.after-commit") // returning at all is the assertion
}

func TestEnableArmsOnlyTheNamedPoints(t *testing.T) {
	t.Cleanup(func() { points.Store(nil) })
	if err := Enable("consumer.after-commit:x"); err == nil {
		t.Fatal("Enable accepted a bad spec")
	}
	if err := Enable("consumer.after-commit:1"); err != nil {
		t.Fatal(err)
	}
	Crash("consumer.before-commit") // not named: must return
	if p := points.Load(); p == nil || (*p)["consumer.after-commit"] != 1 {
		t.Fatalf("points = %v", p)
	}
	if err := Enable(""); err != nil || points.Load() != nil {
		t.Fatalf("Enable(\"\") left %v, %v", points.Load(), err)
	}
}
