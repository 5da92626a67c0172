package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"pgregory.net/rapid"

	"fulfillment/functions/checkout"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/subscription"
)

// invTrialBounded: a trial's plan only while its trial runs (see trialBounded).
const invTrialBounded = "trial_bounded"

// modelTrial is a trial the journey started.
type modelTrial struct {
	ns     string
	endsOn time.Time
}

// callerGitLabCom is checkout's authenticator in the model: every request
// is GitLab.com's (who may call which route is checkout's own tests').
type callerGitLabCom struct{}

func (callerGitLabCom) Caller(*http.Request) (string, error) { return "gitlab-com@model", nil }

func newCheckout(h *harness) *checkout.Function {
	return checkout.New(checkout.Deps{Store: h.st, Publisher: h.bus, GitLab: h.gl, Auth: callerGitLabCom{}, Clock: h.clock,
		Trial: checkout.TrialPolicy{PlanCode: "ultimate", Days: 30, EndingNoticeDays: 7}, Logger: h.log})
}

// StartTrial asks checkout for a trial: on the namespace the next purchase
// will be for (the trial runs when it is bought), or on one of the
// journey's subscriptions' (refused while that one runs; a suspended or
// ended one's namespace gets it). A namespace gets one trial, ever.
func (j *journey) StartTrial(t *rapid.T) {
	h := j.h
	ns := fmt.Sprintf("ns-%d", len(h.subs)+1)
	if rapid.IntRange(0, 2).Draw(t, "trial on a subscription's namespace") == 0 {
		m := j.pick(t)
		if m.inst != nil {
			t.Skip("a self-managed instance has no trial here")
		}
		ns = m.ns
	}
	j.chaos(t)
	j.step(t, "start a trial on %s", ns)
	want, why := http.StatusCreated, "no trial before and no running subscription"
	if h.trials[ns] != nil {
		want, why = http.StatusConflict, "the namespace had its trial"
	} else if id := h.runningOn(ns); id != "" {
		want, why = http.StatusConflict, id+" runs there"
	}
	rec := h.call(h.co, http.MethodPost, "/trials", map[string]any{"namespace_id": ns, "contact": map[string]any{"email": "owner@example.com", "name": "Owner"}})
	if rec.Code != want {
		h.violate(invTrialBounded, "%s: trial asked for: answered %d %s, want %d (%s)", ns, rec.Code, rec.Body.String(), want, why)
	}
	if rec.Code == http.StatusCreated {
		var a checkout.TrialAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			h.t.Fatalf("trial answer: %v", err)
		}
		ends, err := time.Parse(time.DateOnly, a.EndsOn)
		if err != nil {
			h.t.Fatalf("trial answer's ends_on %q: %v", a.EndsOn, err)
		}
		h.trials[ns] = &modelTrial{ns: ns, endsOn: ends}
		h.t.Logf("    trial on %s until %s", ns, a.EndsOn)
	}
	h.drain()
	j.end(t)
}

// runningOn is the id of the journey's subscription of namespace ns that
// runs (pending, active, past due, grace), "" for none.
func (h *harness) runningOn(ns string) string {
	for _, m := range h.subs {
		if m.ns != ns || m.inst != nil {
			continue
		}
		if s := h.sub(m.id); s != nil && (s.Status == subscription.Pending || s.Status == subscription.Active ||
			s.Status == subscription.PastDue || s.Status == subscription.Grace) {
			return m.id
		}
	}
	return ""
}

// trialTick is Cloud Scheduler's daily POST /trials/tick.
func (h *harness) trialTick() {
	rec := h.call(h.co, http.MethodPost, "/trials/tick", nil)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("trial tick answered %d %s", rec.Code, rec.Body.String())
	}
	var res checkout.TickResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		h.t.Fatalf("trial tick answer: %v", err)
	}
	h.lastTrialTickAt = h.now()
	h.trialsConverted += res.Converted
	h.trialsEnded += res.Ended
	h.drain()
}

// call sends one request to an HTTP function in process.
func (h *harness) call(fn http.Handler, method, path string, body any) *httptest.ResponseRecorder {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			h.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	rec := httptest.NewRecorder()
	fn.ServeHTTP(rec, httptest.NewRequestWithContext(h.ctx, method, path, bytes.NewReader(b)))
	return rec
}

// onTrial says GitLab holds a trial's plan for namespace ns (trial: true).
func (h *harness) onTrial(ns string) bool {
	s := h.gl.ns[ns]
	return s != nil && s.base.Trial
}

// trialBounded: GitLab holds a trial's plan for a namespace only while its
// trial runs: not once the trial was converted or ended, not after a tick
// that ran at or past its end, and never over a subscription of the
// namespace that is active on a paid term (a purchase lands over the
// trial, and a trial never over a purchase). While the trial runs, before
// its end, with no subscription running there, GitLab holds its plan (a
// purchase refunded or ended during it gives the trial back). A trial is
// granted when asked for exactly when the namespace had none and runs no
// subscription (found when asked, by StartTrial).
func trialBounded(h *harness) []string {
	out := append([]string(nil), h.pending[invTrialBounded]...)
	if !h.bus.quiet() {
		return out
	}
	for ns, tr := range h.trials {
		t, _, err := h.st.Trial(h.ctx, ns)
		if err != nil {
			h.t.Fatalf("read trial %s: %v", ns, err)
		}
		if !h.onTrial(ns) {
			if t.Status == store.TrialActive && h.now().Before(tr.endsOn) && h.runningOn(ns) == "" {
				out = append(out, fmt.Sprintf("%s: the trial runs until %s and no subscription runs there, but GitLab holds %s",
					ns, tr.endsOn.Format(time.DateOnly), h.gl.grant(ns).plan))
			}
			continue
		}
		if t.Status != store.TrialActive {
			out = append(out, fmt.Sprintf("%s: GitLab holds the trial's plan, but the trial is %s", ns, t.Status))
		}
		if !h.lastTrialTickAt.Before(tr.endsOn) {
			out = append(out, fmt.Sprintf("%s: GitLab holds the trial's plan after the tick of %s, past its end %s",
				ns, h.lastTrialTickAt.Format(time.RFC3339), tr.endsOn.Format(time.DateOnly)))
		}
	}
	for _, m := range h.subs {
		if m.inst != nil || !h.onTrial(m.ns) {
			continue
		}
		e, paid := h.paidNow(m)
		if s := h.viewSub(m.id); paid && !e.inGrace && s != nil && s.Status == subscription.Active {
			out = append(out, fmt.Sprintf("%s: GitLab holds a trial's plan for %s over the paid term %s..%s",
				m.id, m.ns, e.termStart.Format(time.DateOnly), e.termEnd.Format(time.DateOnly)))
		}
	}
	return out
}
