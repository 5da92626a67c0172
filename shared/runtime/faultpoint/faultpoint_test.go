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

func TestCrashIsInertWithoutTheSetting(t *testing.T) {
	t.Setenv(EnvVar, "")
	Crash("consumer.after-commit") // returning at all is the assertion
}
