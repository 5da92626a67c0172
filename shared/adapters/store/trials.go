package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/catalog"
)

// Trial statuses.
const (
	TrialStarting  = "starting"  // recorded; GitLab not yet told
	TrialActive    = "active"    // provisioned on GitLab with the trial fields
	TrialEnded     = "ended"     // returned to free
	TrialConverted = "converted" // a paid subscription took over
)

// Trial is a namespace's free trial: one per namespace, ever (its id is the
// namespace id).
type Trial struct {
	NamespaceID string           `firestore:"namespace_id" json:"namespace_id"`
	PlanCode    string           `firestore:"plan_code" json:"plan_code"`
	StartsOn    time.Time        `firestore:"starts_on" json:"starts_on"`
	EndsOn      time.Time        `firestore:"ends_on" json:"ends_on"`
	Status      string           `firestore:"status" json:"status"`
	Contact     catalog.Customer `firestore:"contact" json:"-"`
	Caller      string           `firestore:"caller" json:"caller"`
	// EndingNoticeFor is the end date the trial.ending event went out for.
	EndingNoticeFor time.Time `firestore:"ending_notice_for" json:"ending_notice_for,omitzero"`
	// Extensions are the operators' extensions, oldest first; Unsynced says
	// the newest is not yet on GitLab nor announced (the next trial tick
	// does both).
	Extensions     []TrialExtension `firestore:"extensions" json:"extensions,omitempty"`
	Unsynced       bool             `firestore:"unsynced" json:"unsynced"`
	SubscriptionID string           `firestore:"subscription_id" json:"subscription_id,omitempty"`
	UpdatedAt      time.Time        `firestore:"updated_at" json:"updated_at"`
}

// TrialExtension records who extended a trial, why, and by how much.
type TrialExtension struct {
	By     string    `firestore:"by" json:"by"`
	Reason string    `firestore:"reason" json:"reason"`
	Days   int       `firestore:"days" json:"days"`
	From   time.Time `firestore:"from" json:"from"`
	To     time.Time `firestore:"to" json:"to"`
	At     time.Time `firestore:"at" json:"at"`
}

// Snapshot is the payload of the trial's events.
func (t Trial) Snapshot() catalog.TrialSnapshot {
	s := catalog.TrialSnapshot{
		NamespaceID: t.NamespaceID, PlanCode: t.PlanCode, StartsOn: t.StartsOn.Format(time.DateOnly),
		EndsOn: t.EndsOn.Format(time.DateOnly), Contact: t.Contact, SubscriptionID: t.SubscriptionID,
	}
	if n := len(t.Extensions); n > 0 {
		s.ExtendedBy, s.Reason = t.Extensions[n-1].By, t.Extensions[n-1].Reason
	}
	return s
}

// CreateTrial stores t unless the namespace had a trial, which is
// returned instead with created false.
func (s *Store) CreateTrial(ctx context.Context, t Trial) (stored Trial, created bool, err error) {
	err = s.DB.Create(ctx, Trials, t.NamespaceID, t)
	if err == nil {
		return t, true, nil
	}
	if !docstore.IsAlreadyExists(err) {
		return Trial{}, false, fmt.Errorf("store.CreateTrial: %w", err)
	}
	stored, found, err := s.Trial(ctx, t.NamespaceID)
	if err == nil && !found {
		err = errors.New("store.CreateTrial: trial vanished")
	}
	return stored, false, err
}

// Trial reads a namespace's trial; found is false when it never had one.
func (s *Store) Trial(ctx context.Context, namespaceID string) (t Trial, found bool, err error) {
	err = s.Get(ctx, nil, Trials, namespaceID, &t)
	if docstore.IsNotFound(err) {
		return t, false, nil
	}
	return t, err == nil, err
}

// UpdateTrial reads a trial, lets change edit it, and saves it, in one
// transaction; change may run more than once.
func (s *Store) UpdateTrial(ctx context.Context, namespaceID string, change func(*Trial) error) (Trial, error) {
	var out Trial
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var t Trial
		if err := tx.Get(Trials, namespaceID, &t); err != nil {
			return err
		}
		if err := change(&t); err != nil {
			return err
		}
		out = t
		return tx.Set(Trials, namespaceID, t)
	})
	if err != nil {
		return Trial{}, fmt.Errorf("store.UpdateTrial %s: %w", namespaceID, err)
	}
	return out, nil
}

// TrialsIn lists the trials in status.
func (s *Store) TrialsIn(ctx context.Context, status string) ([]Trial, error) {
	return All[Trial](ctx, s, docstore.Query{Collection: Trials, Where: []docstore.Filter{{Field: "status", Op: docstore.Eq, Value: status}}})
}

// ExtendTrial moves an active trial's end by days, recording who and why;
// the next trial tick tells GitLab and announces it.
func (s *Store) ExtendTrial(ctx context.Context, namespaceID string, days int, by, reason string, now time.Time) (Trial, error) {
	if days < 1 || days > 90 {
		return Trial{}, fmt.Errorf("store.ExtendTrial: %d days: want 1..90", days)
	}
	if by == "" || reason == "" {
		return Trial{}, errors.New("store.ExtendTrial: who and why are required")
	}
	return s.UpdateTrial(ctx, namespaceID, func(t *Trial) error {
		if t.Status != TrialActive {
			return fmt.Errorf("trial of namespace %s is %s, not active", namespaceID, t.Status)
		}
		to := t.EndsOn.AddDate(0, 0, days)
		t.Extensions = append(t.Extensions, TrialExtension{By: by, Reason: reason, Days: days, From: t.EndsOn, To: to, At: now.UTC()})
		t.EndsOn, t.Unsynced, t.UpdatedAt = to, true, now.UTC()
		return nil
	})
}
