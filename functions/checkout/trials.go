package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"time"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/httpbody"
)

// TrialRequest is the body of POST /trials.
type TrialRequest struct {
	NamespaceID string           `json:"namespace_id"`
	PlanCode    string           `json:"plan_code,omitempty"` // default: the trial policy's
	Contact     catalog.Customer `json:"contact"`
}

// TrialAnswer describes a trial.
type TrialAnswer struct {
	NamespaceID string `json:"namespace_id"`
	PlanCode    string `json:"plan_code"`
	Status      string `json:"status"`
	StartsOn    string `json:"starts_on"`
	EndsOn      string `json:"ends_on"`
}

func trialAnswer(t store.Trial) TrialAnswer {
	return TrialAnswer{NamespaceID: t.NamespaceID, PlanCode: t.PlanCode, Status: t.Status,
		StartsOn: t.StartsOn.Format(time.DateOnly), EndsOn: t.EndsOn.Format(time.DateOnly)}
}

// startTrial handles POST /trials: 400 for a body it cannot read, 422 for
// an unknown plan, 409 when the namespace had a trial or has a running paid
// subscription, 502 when GitLab fails (retry), 201 with the trial.
func (f *Function) startTrial(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req TrialRequest
	body, err := httpbody.Read(w, r, maxBody)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		reply(w, http.StatusBadRequest, problem("body", "malformed trial request"))
		return
	}
	if req.NamespaceID == "" {
		reply(w, http.StatusBadRequest, problem("invalid_request", "namespace_id is required"))
		return
	}
	if a, err := mail.ParseAddress(req.Contact.Email); err != nil || a.Address != req.Contact.Email {
		reply(w, http.StatusBadRequest, problem("invalid_request", "contact.email must be an e-mail address"))
		return
	}
	if req.PlanCode == "" {
		req.PlanCode = f.d.Trial.PlanCode
	}
	if _, err := catalog.LookupPlan(req.PlanCode); err != nil {
		reply(w, http.StatusUnprocessableEntity, problem("invalid_order", err.Error()))
		return
	}
	// Under the namespace's lease, which provisioning holds to send a
	// purchase's plan: a purchase provisioned meanwhile is seen here, and
	// one provisioned after lands over the trial, not under it.
	now := f.d.Clock.Now().UTC()
	var t store.Trial
	var refusal *Problem
	var gitlabErr error
	err = consumer.Hold(ctx, f.d.Store, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget(req.NamespaceID), func(ctx context.Context) error {
		var err error
		t, refusal, err = f.beginTrial(ctx, req, now)
		if err != nil || refusal != nil {
			return err
		}
		// Provision, then announce, then mark active: a failure in between
		// leaves it starting, and a retry (same namespace) finishes it.
		gitlabErr = f.provisionTrial(ctx, t)
		return nil
	})
	switch {
	case err != nil:
		f.unavailable(w, r, "trial", err)
		return
	case refusal != nil:
		reply(w, http.StatusConflict, *refusal)
		return
	case gitlabErr != nil:
		f.d.Logger.ErrorContext(ctx, "trial not provisioned", "namespace_id", t.NamespaceID, "error", gitlabErr.Error())
		reply(w, http.StatusBadGateway, problem("gitlab", "the trial could not be provisioned: retry"))
		return
	}
	if err := f.announceTrial(ctx, catalog.TrialStarted, "trial-started-"+t.NamespaceID, t); err != nil {
		f.unavailable(w, r, "trial announcement", err)
		return
	}
	t, err = f.d.Store.UpdateTrial(ctx, t.NamespaceID, func(t *store.Trial) error {
		if t.Status == store.TrialStarting {
			t.Status, t.UpdatedAt = store.TrialActive, now
		}
		return nil
	})
	if err != nil {
		f.unavailable(w, r, "trial", err)
		return
	}
	f.d.Logger.InfoContext(ctx, "trial started", "namespace_id", t.NamespaceID, "plan_code", t.PlanCode, "ends_on", t.EndsOn.Format(time.DateOnly))
	reply(w, http.StatusCreated, trialAnswer(t))
}

// beginTrial stores the namespace's trial as starting, or says why it gets
// none (a running subscription, a trial had).
func (f *Function) beginTrial(ctx context.Context, req TrialRequest, now time.Time) (store.Trial, *Problem, error) {
	running, _, _, err := f.eligibility(ctx, catalog.Order{Deployment: catalog.DeploymentSaaS, NamespaceID: req.NamespaceID})
	if err != nil {
		return store.Trial{}, nil, fmt.Errorf("eligibility: %w", err)
	}
	if running != "" {
		p := problem("already_subscribed", "the namespace has a running subscription ("+running+")")
		return store.Trial{}, &p, nil
	}
	start := now.Truncate(24 * time.Hour)
	t, created, err := f.d.Store.CreateTrial(ctx, store.Trial{
		NamespaceID: req.NamespaceID, PlanCode: req.PlanCode, StartsOn: start, EndsOn: start.AddDate(0, 0, f.d.Trial.Days),
		Status: store.TrialStarting, Contact: req.Contact, Caller: callerOf(ctx), UpdatedAt: now,
	})
	if err != nil {
		return t, nil, err
	}
	if !created && t.Status != store.TrialStarting {
		p := problem("trial_used", "the namespace had its trial ("+t.Status+")")
		return t, &p, nil
	}
	return t, nil, nil
}

// provisionTrial gives the namespace the trial's plan with GitLab's trial fields.
func (f *Function) provisionTrial(ctx context.Context, t store.Trial) error {
	return f.d.GitLab.Provision(ctx, t.NamespaceID, gitlab.ProvisionRequest{BaseProduct: gitlab.TrialProduct(t.NamespaceID, t.PlanCode, t.StartsOn, t.EndsOn)})
}

// Eligibility is the answer of GET /trials/eligibility.
type Eligibility struct {
	NamespaceID           string       `json:"namespace_id"`
	CanStartTrial         bool         `json:"can_start_trial"`
	HasActiveSubscription bool         `json:"has_active_subscription"`
	SubscriptionID        string       `json:"subscription_id,omitempty"`
	Trial                 *TrialAnswer `json:"trial,omitempty"`
}

// trialEligibility handles GET /trials/eligibility?namespace_id=N.
func (f *Function) trialEligibility(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace_id")
	if ns == "" {
		reply(w, http.StatusBadRequest, problem("invalid_request", "namespace_id is required"))
		return
	}
	running, _, _, err := f.eligibility(r.Context(), catalog.Order{Deployment: catalog.DeploymentSaaS, NamespaceID: ns})
	if err != nil {
		f.unavailable(w, r, "eligibility", err)
		return
	}
	t, found, err := f.d.Store.Trial(r.Context(), ns)
	if err != nil {
		f.unavailable(w, r, "trial", err)
		return
	}
	e := Eligibility{NamespaceID: ns, HasActiveSubscription: running != "", SubscriptionID: running,
		CanStartTrial: running == "" && (!found || t.Status == store.TrialStarting)}
	if found {
		a := trialAnswer(t)
		e.Trial = &a
	}
	reply(w, http.StatusOK, e)
}

// TickResult is the answer of POST /trials/tick.
type TickResult struct {
	Converted int `json:"converted"`
	Extended  int `json:"extended"`
	Ending    int `json:"ending"`
	Ended     int `json:"ended"`
	Failed    int `json:"failed"`
}

// trialTick handles POST /trials/tick (Cloud Scheduler, daily): each
// active trial whose namespace bought a plan is converted (GitLab already
// has the paid plan, so access never lapses), an operator's extension is
// sent to GitLab and announced, a trial near its end is announced once,
// and a trial past its end returns the namespace to free. Failures are
// counted and retried by the next tick; 503 when any failed.
func (f *Function) trialTick(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	trials, err := f.d.Store.TrialsIn(ctx, store.TrialActive)
	if err != nil {
		f.unavailable(w, r, "trial list", err)
		return
	}
	var res TickResult
	now := f.d.Clock.Now().UTC()
	for _, t := range trials {
		// Under the namespace's lease, as provisioning sends a purchase's
		// plan: what the tick finds paid or not cannot change before its
		// GitLab call, and a plan bought after lands over the free one.
		err := consumer.Hold(ctx, f.d.Store, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget(t.NamespaceID), func(ctx context.Context) error {
			// Read again under the lease: an operator's extension (which
			// holds it too) may have landed since the list.
			cur, found, err := f.d.Store.Trial(ctx, t.NamespaceID)
			if err != nil || !found || cur.Status != store.TrialActive {
				return err
			}
			return f.tickTrial(ctx, cur, now, &res)
		})
		if err != nil {
			res.Failed++
			f.d.Logger.ErrorContext(ctx, "trial tick failed", "namespace_id", t.NamespaceID, "error", err.Error())
		}
	}
	status := http.StatusOK
	if res.Failed > 0 {
		status = http.StatusServiceUnavailable
	}
	reply(w, status, res)
}

func (f *Function) tickTrial(ctx context.Context, t store.Trial, now time.Time, res *TickResult) error {
	paid, err := f.paidSubscription(ctx, t.NamespaceID)
	if err != nil {
		return err
	}
	if paid != "" {
		return f.convertTrial(ctx, t, paid, now, res)
	}
	if !now.Before(t.EndsOn) {
		return f.endTrial(ctx, t, now, res)
	}
	if t.Unsynced {
		if err := f.provisionTrial(ctx, t); err != nil {
			return err
		}
		id := "trial-extended-" + t.NamespaceID + "-" + strconv.Itoa(len(t.Extensions))
		if err := f.announceTrial(ctx, catalog.TrialExtended, id, t); err != nil {
			return err
		}
		res.Extended++
		ends := t.EndsOn
		if err := f.setTrial(ctx, t.NamespaceID, now, func(s *store.Trial) { s.Unsynced = s.Unsynced && !s.EndsOn.Equal(ends) }); err != nil {
			return err
		}
	}
	notice := t.EndsOn.AddDate(0, 0, -f.d.Trial.EndingNoticeDays)
	if !now.Before(notice) && !t.EndingNoticeFor.Equal(t.EndsOn) {
		id := "trial-ending-" + t.NamespaceID + "-" + t.EndsOn.Format(time.DateOnly)
		if err := f.announceTrial(ctx, catalog.TrialEnding, id, t); err != nil {
			return err
		}
		res.Ending++
		ends := t.EndsOn
		return f.setTrial(ctx, t.NamespaceID, now, func(s *store.Trial) { s.EndingNoticeFor = ends })
	}
	return nil
}

// paidSubscription is the namespace's subscription holding a paid term
// (Active, PastDue or Grace), "" for none. A Pending one (a delayed payment
// not collected yet) is not paid: it converts no trial (rule 9), though it
// does block a second purchase (Running).
func (f *Function) paidSubscription(ctx context.Context, namespaceID string) (string, error) {
	subs, err := f.d.Store.SubscriptionsWhere(ctx, "order.namespace_id", namespaceID)
	if err != nil {
		return "", fmt.Errorf("checkout.paidSubscription: %w", err)
	}
	for _, s := range subs {
		if s.Status != subscription.Pending && Running(s.Status) {
			return s.ID, nil
		}
	}
	return "", nil
}

// convertTrial ends the trial in favour of the paid subscription: GitLab
// already has the paid plan (provisioning sent it), so access never lapses.
func (f *Function) convertTrial(ctx context.Context, t store.Trial, paid string, now time.Time, res *TickResult) error {
	t.SubscriptionID = paid
	if err := f.announceTrial(ctx, catalog.TrialConverted, "trial-converted-"+t.NamespaceID, t); err != nil {
		return err
	}
	res.Converted++
	return f.setTrial(ctx, t.NamespaceID, now, func(s *store.Trial) { s.Status, s.SubscriptionID = store.TrialConverted, paid })
}

// endTrial returns the namespace to free. It runs under the namespace's
// lease after tickTrial found no paid subscription: provisioning, which
// sends a purchase's plan under the same lease, cannot have sent one since.
func (f *Function) endTrial(ctx context.Context, t store.Trial, now time.Time, res *TickResult) error {
	err := f.d.GitLab.Provision(ctx, t.NamespaceID, gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{
		PlanCode: "free", Trial: false, PurchaseXID: "trial-" + t.NamespaceID + "-ended",
	}})
	if err != nil {
		return err
	}
	if err := f.announceTrial(ctx, catalog.TrialEnded, "trial-ended-"+t.NamespaceID, t); err != nil {
		return err
	}
	res.Ended++
	return f.setTrial(ctx, t.NamespaceID, now, func(s *store.Trial) { s.Status = store.TrialEnded })
}

func (f *Function) setTrial(ctx context.Context, ns string, now time.Time, edit func(*store.Trial)) error {
	_, err := f.d.Store.UpdateTrial(ctx, ns, func(t *store.Trial) error {
		if t.Status != store.TrialActive {
			return errors.New("trial is no longer active")
		}
		edit(t)
		t.UpdatedAt = now
		return nil
	})
	return err
}

// announceTrial publishes a trial event; its id is derived from what it
// announces, so a retried tick publishes the same event again.
func (f *Function) announceTrial(ctx context.Context, typ, id string, t store.Trial) error {
	ce, err := cloudevent.New(ctx, id, catalog.SourceCheckout, typ, t.NamespaceID, t.Snapshot())
	if err != nil {
		return err
	}
	if err := f.d.Publisher.Publish(ctx, catalog.TopicSubscriptionEvents, ce); err != nil {
		return fmt.Errorf("checkout.announceTrial %s: %w", typ, err)
	}
	return nil
}
