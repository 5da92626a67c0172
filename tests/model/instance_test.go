package model

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"pgregory.net/rapid"

	"fulfillment/functions/licensing"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/testsupport/gitlabinstance"
)

// instance is a self-managed GitLab instance as cloud licensing sees it: its
// admin activates it with the code provisioning announced (the GraphQL
// mutation GitLab sends), and it syncs through seat links, keeping the
// license each answer carries. It speaks to licensing's real handler.
type instance struct {
	id, addr string // its instance id, and the address it calls from
	// codes are the distinct activation codes announced for its subscription.
	codes []string
	// key is the license key it holds ("" before activation).
	key string
	// synced says its last sync (at the end of the step just run) was
	// answered: the license it holds is what licensing serves now. An
	// instance offline, or limited, holds what it had (GitLab keeps a
	// license until it expires); the invariants judge what is served.
	synced bool
	// offline: it stays so for some steps (an air gap, an outage, a
	// firewall); lastSync is when licensing last answered it.
	offline  bool
	lastSync time.Time
	// seatLinks answered, and licenses received (activation included), for the figures.
	seatLinks, licenses int
}

// granted is what the held license gives the instance: paid features while
// it is active, nothing once suspended or revoked.
func (in *instance) granted(h *harness) grant {
	if in == nil || in.key == "" {
		return grant{}
	}
	l, err := license.VerifyKey(in.key, h.licenseKey.Public().(ed25519.PublicKey))
	if err != nil {
		h.t.Fatalf("instance %s holds a license key that does not verify: %v", in.id, err)
	}
	gr := grant{provisionedAtAll: true}
	if l.Status == license.StatusActive && l.PlanCode != "free" {
		gr.plan, gr.seats, gr.storageGB, gr.computeMinutes = l.PlanCode, l.Seats, l.AddOns.StorageGB, l.AddOns.ComputeMinutes
	}
	gr.anythingGranted = gr.plan != "" || gr.seats > 0 || gr.storageGB > 0 || gr.computeMinutes > 0
	return gr
}

// granted is what GitLab gives a subscription now: a namespace's plan on
// GitLab.com, or the license a self-managed instance holds.
func (h *harness) granted(m *modelSub) grant {
	if m.inst != nil {
		return m.inst.granted(h)
	}
	if !h.latestOn(m) {
		return grant{} // the namespace's plan is its newer subscription's
	}
	return h.gl.grant(m.ns)
}

// latestOn says m is the newest of the journey's subscriptions of its
// namespace (an instance has one).
func (h *harness) latestOn(m *modelSub) bool {
	if m.inst != nil {
		return true
	}
	for i := len(h.subs) - 1; i >= 0; i-- {
		if h.subs[i].ns == m.ns {
			return h.subs[i] == m
		}
	}
	return false
}

// endedNamespaces are the namespaces whose newest subscription ended
// (canceled or expired): checkout lets them buy again.
func (h *harness) endedNamespaces() []string {
	var out []string
	for _, m := range h.subs {
		if m.inst != nil || !h.latestOn(m) {
			continue
		}
		if s := h.sub(m.id); s != nil && (s.Status == subscription.Canceled || s.Status == subscription.Expired) {
			out = append(out, m.ns)
		}
	}
	return out
}

// servedGrant is what the system serves m now, as the invariants judge it:
// a namespace's plan always; an instance's license when its last sync was
// answered, nothing known otherwise (what it holds may be older).
func (h *harness) servedGrant(m *modelSub) grant {
	if m.inst != nil && !m.inst.synced {
		return grant{}
	}
	return h.granted(m)
}

// published looks at what the functions publish: an activation code
// announced is handed to the subscription's instance, and judged (rule 9)
// when it is announced.
func (h *harness) published(topic string, e event.Event) {
	if topic != catalog.TopicSubscriptionEvents || e.Type() != catalog.LicenseActivationCodeIssued {
		return
	}
	var c catalog.ActivationCodeIssued
	if err := cloudevent.DecodeData(e, &c); err != nil {
		h.t.Fatalf("activation code event: %v", err)
	}
	m := h.modelSub(c.SubscriptionID)
	if m == nil || m.inst == nil {
		h.violate(invOneCodeWhileRunning, "%s: an activation code was announced for a subscription that is not self-managed", c.SubscriptionID)
		return
	}
	in := m.inst
	for _, seen := range in.codes {
		if seen == c.ActivationCode {
			return // the same announcement again (a redelivery publishes the recorded event)
		}
	}
	in.codes = append(in.codes, c.ActivationCode)
	if len(in.codes) > 1 {
		h.violate(invOneCodeWhileRunning, "%s: %d distinct activation codes announced", m.id, len(in.codes))
	}
	// The code is announced in provisioning's transaction's wake: what it
	// applied last must be a running subscription's entitlement, not a
	// revocation an older event arrived after.
	ent, found, err := h.st.Entitlement(h.ctx, nil, m.id)
	if err != nil {
		h.t.Fatalf("read entitlement %s: %v", m.id, err)
	}
	if !found || ent.Status != store.EntitlementActive {
		h.violate(invOneCodeWhileRunning, "%s: an activation code was announced while the entitlement applied last is %q (version %d, plan %s)",
			m.id, ent.Status, ent.Version, ent.PlanCode)
	}
}

// instancesSync runs at the end of every step: each self-managed instance
// with a code activates once, then syncs (a seat link without a user
// count, as GitLab sends before it has counted), unless it is offline for
// this step.
func (j *journey) instancesSync(t *rapid.T) {
	h := j.h
	for _, m := range h.subs {
		in := m.inst
		if in == nil {
			continue
		}
		in.synced = false
		if in.offline {
			in.offline = rapid.IntRange(0, 2).Draw(t, "instance back online") != 0
		} else {
			in.offline = rapid.IntRange(0, 5).Draw(t, "instance goes offline") == 0
		}
		if in.offline {
			t.Logf("    instance %s is offline", in.id)
			continue
		}
		if in.key == "" {
			if len(in.codes) == 0 {
				continue
			}
			in.activate(t, h, in.codes[len(in.codes)-1])
			continue
		}
		in.seatLink(t, h, nil, h.now())
	}
}

// activate sends GitLab's cloudActivationActivate mutation.
func (in *instance) activate(t *rapid.T, h *harness, code string) {
	body, _ := json.Marshal(map[string]any{"query": gitlabinstance.ActivateMutation,
		"variables": gitlabinstance.ActivateVariables(code, in.id, "uniq-"+in.id)})
	status, b := in.post(h, "/graphql", body)
	var a struct {
		Data struct {
			CloudActivationActivate struct {
				LicenseKey *string  `json:"licenseKey"`
				Errors     []string `json:"errors"`
			} `json:"cloudActivationActivate"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &a); err != nil || status != http.StatusOK {
		t.Fatalf("activation of %s answered %d %s", in.id, status, b)
	}
	got := a.Data.CloudActivationActivate
	t.Logf("    instance %s activates: %s", in.id, strings.Join(got.Errors, "; "))
	if got.LicenseKey != nil {
		in.key, in.synced, in.lastSync = *got.LicenseKey, true, h.now()
		in.licenses++
	}
}

// seatLink sends what Gitlab::SeatLinkData#as_json sends (users nil: no
// count yet) and keeps a new license the answer carries.
func (in *instance) seatLink(t *rapid.T, h *harness, users *int, day time.Time) licensing.SeatLinkAnswer {
	status, b := in.post(h, "/api/v1/seat_links", gitlabinstance.SeatLinkBody(in.key, in.id, day, users))
	var a licensing.SeatLinkAnswer
	switch status {
	case http.StatusOK:
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("seat link answer of %s: %v: %s", in.id, err, b)
		}
		if a.License != "" {
			in.key = a.License
			in.licenses++
		}
		in.synced, in.lastSync = true, h.now()
		in.seatLinks++
	case http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		// Refused (a revoked key past its delivery window) or limited:
		// the instance keeps what it holds.
	default:
		t.Fatalf("seat link of %s answered %d %s", in.id, status, b)
	}
	t.Logf("    instance %s seat link: %d %s", in.id, status, strings.TrimSpace(string(b)))
	return a
}

func (in *instance) post(h *harness, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = in.addr
	rec := httptest.NewRecorder()
	h.lic.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// syncCheck is Cloud Scheduler's daily strict-sync check (POST
// /tasks/sync-check): it runs with the renewal ticks, before them.
func (h *harness) syncCheck() {
	req := httptest.NewRequest(http.MethodPost, "/tasks/sync-check", nil)
	rec := httptest.NewRecorder()
	h.lic.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("sync check answered %d %s", rec.Code, rec.Body.String())
	}
	var res licensing.CheckResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		h.t.Fatalf("sync check answer: %v", err)
	}
	h.overdue += len(res.Overdue)
	h.graceEnded += len(res.GraceEnded)
	if len(res.Overdue)+len(res.GraceEnded) > 0 {
		h.t.Logf("    sync check: overdue %v, auto-renew turned off %v", res.Overdue, res.GraceEnded)
	}
	h.drain()
}

// silentInstanceNotRenewed (strict cloud licensing, docs/licensing.md): an
// activated instance silent for the overdue and grace days has its
// subscription's auto-renewal turned off by the next daily check, so a
// license nobody reports for is not renewed. Counted from the end of a
// scheduler outage (the check did not run) and judged a day after. The
// check acts once per silence: the customer may turn auto-renew on again
// after it (docs/licensing.md).
func silentInstanceNotRenewed(h *harness) []string {
	if !h.bus.quiet() {
		return nil
	}
	p := licensing.DefaultPolicy()
	limit := time.Duration(p.OverdueDays+p.GraceDays) * 24 * time.Hour
	var out []string
	for _, m := range h.subs {
		in, s := m.inst, h.viewSub(m.id)
		if in == nil || in.lastSync.IsZero() || s == nil || !s.Order.AutoRenew ||
			(s.Status != subscription.Active && s.Status != subscription.PastDue && s.Status != subscription.Grace) {
			continue
		}
		if !m.autoRenewOnAt.Before(in.lastSync.Add(limit)) {
			continue
		}
		if due := maxTime(in.lastSync.Add(limit), h.outageEnd).Add(24 * time.Hour); !h.now().Before(due) {
			out = append(out, fmt.Sprintf("%s: instance %s silent since %s, yet the subscription (%s) still renews automatically at %s",
				m.id, in.id, in.lastSync.Format(time.RFC3339), s.Status, h.now().Format(time.RFC3339)))
		}
	}
	return out
}
