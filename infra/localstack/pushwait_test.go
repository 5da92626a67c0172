package localstack

import (
	"testing"
	"time"
)

func TestPushWaitsKeepsTheLastPushesOfEachFunction(t *testing.T) {
	var p pushWaits
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range pushWaitsKept + 10 {
		fn := "payment-result"
		if i%2 == 1 {
			fn = "provisioning"
		}
		p.add(PushWait{Function: fn, Arrived: t0.Add(time.Duration(i) * time.Millisecond), Wait: time.Duration(i)})
	}
	// The first ten are overwritten; of the rest, the even ones are payment-result's.
	all := p.between("payment-result", t0, t0.Add(time.Hour))
	if len(all) != pushWaitsKept/2 || all[0].Wait != 10 || all[len(all)-1].Wait != pushWaitsKept+8 {
		t.Fatalf("kept %d pushes, %v to %v; want %d, the 11th to the last", len(all), all[0].Wait, all[len(all)-1].Wait, pushWaitsKept/2)
	}
	span := p.between("provisioning", t0.Add(500*time.Millisecond), t0.Add(504*time.Millisecond))
	if len(span) != 2 || span[0].Wait != 501 || span[1].Wait != 503 {
		t.Errorf("provisioning's pushes in [500, 504] ms = %+v, want those of 501 and 503", span)
	}
	if got := p.between("crm-push", t0, t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("crm-push's pushes = %+v, want none", got)
	}
}

func TestRedelivererNotesHowLongTheEmulatorHeldAPush(t *testing.T) {
	r := &redeliverer{fn: "provisioning", waits: &pushWaits{}}
	arrived := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// The emulator gives the publish time to the millisecond, cut: read as
	// the middle of that millisecond. A finer one is read as given.
	r.noteWait(map[string]any{"message": map[string]any{"publishTime": "2026-12-06T11:59:59.925Z"}}, arrived)
	r.noteWait(map[string]any{"message": map[string]any{"publishTime": "2026-12-06T11:59:59.925250Z"}}, arrived)
	r.noteWait(map[string]any{"message": map[string]any{"data": "e30="}}, arrived) // no publishTime: nothing to note
	got := r.waits.between("provisioning", arrived, arrived)
	want := []time.Duration{74500 * time.Microsecond, 74750 * time.Microsecond}
	if len(got) != 2 || got[0].Wait != want[0] || got[1].Wait != want[1] {
		t.Errorf("waits = %+v, want %v", got, want)
	}
}

func TestPausesSpreadOverTheEmulatorsIdleSleep(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 100 {
		d := PauseBefore(i)
		if d < 0 || d >= IdlePushSleep {
			t.Fatalf("PauseBefore(%d) = %v, want within [0, %v)", i, d, IdlePushSleep)
		}
		seen[d] = true
	}
	if len(seen) != 100 {
		t.Errorf("100 sends paused %d distinct ways, want every millisecond of the sleep", len(seen))
	}
}

func TestTwoHopsTakesTheFirstPushToTheFirstAndTheLastToTheSecond(t *testing.T) {
	s := &Stack{}
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s.waits.add(PushWait{Function: "payment-result", Arrived: t0.Add(-time.Millisecond), Wait: time.Second}) // before the span
	s.waits.add(PushWait{Function: "payment-result", Arrived: t0.Add(40 * time.Millisecond), Wait: 38 * time.Millisecond})
	s.waits.add(PushWait{Function: "payment-result", Arrived: t0.Add(50 * time.Millisecond), Wait: 5 * time.Millisecond})
	s.waits.add(PushWait{Function: "provisioning", Arrived: t0.Add(60 * time.Millisecond), Wait: 2 * time.Millisecond})
	s.waits.add(PushWait{Function: "provisioning", Arrived: t0.Add(90 * time.Millisecond), Wait: 30 * time.Millisecond})
	h := s.TwoHops(t0, t0.Add(100*time.Millisecond), "payment-result", "provisioning")
	if h.Total != 100*time.Millisecond || h.EmulatorWait != 68*time.Millisecond || h.Own() != 32*time.Millisecond {
		t.Errorf("TwoHops = %+v (own %v), want 100 ms in all, 38 + 30 ms of it the emulator's", h, h.Own())
	}
}
