package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/subscription"
)

// This file holds cloud licensing's storage model (functions/licensing, and
// provisioning, which issues the activation code): one cloud license per
// self-managed subscription, the index from an activation code's hash to its
// subscription, and the attempts counted against each code.

// Collections of cloud licensing.
const (
	CloudLicenses      = "cloud_licenses"
	ActivationCodes    = "activation_codes"
	ActivationAttempts = "activation_attempts"
)

// ActivationCode indexes a code's hash (its document id) to its
// subscription. The plaintext is never stored here.
type ActivationCode struct {
	SubscriptionID string    `firestore:"subscription_id" json:"subscription_id"`
	IssuedAt       time.Time `firestore:"issued_at" json:"issued_at"`
}

// CloudLicense is a self-managed subscription's cloud licensing state: its
// activation code (hashed), the instance bound to it, the last sync, and the
// license last issued to it.
type CloudLicense struct {
	SubscriptionID string    `firestore:"subscription_id" json:"subscription_id"`
	CodeHash       string    `firestore:"code_hash" json:"code_hash"`
	CodeIssuedAt   time.Time `firestore:"code_issued_at" json:"code_issued_at"`
	// CodeEventKey is the dedupe record whose outgoing event carries the
	// plaintext code (kept for its TTL); CodeShown says the operator has
	// seen it once (fulfillctl show).
	CodeEventKey string `firestore:"code_event_key" json:"code_event_key,omitempty"`
	CodeShown    bool   `firestore:"code_shown" json:"code_shown"`

	// The instance the code is bound to (GitLab's instance uuid), once activated.
	InstanceID       string    `firestore:"instance_id" json:"instance_id,omitempty"`
	UniqueInstanceID string    `firestore:"unique_instance_id" json:"unique_instance_id,omitempty"`
	Hostname         string    `firestore:"hostname" json:"hostname,omitempty"`
	GitLabVersion    string    `firestore:"gitlab_version" json:"gitlab_version,omitempty"`
	ActivatedAt      time.Time `firestore:"activated_at" json:"activated_at"`
	// Offline is set when an operator issued an offline license: no sync is expected.
	Offline bool `firestore:"offline" json:"offline"`

	// LastSyncAt is when the newest seat link (or imported usage file) arrived.
	LastSyncAt time.Time `firestore:"last_sync_at" json:"last_sync_at"`
	// OverdueFor and GraceActedFor are the LastSyncAt the overdue event and
	// the end-of-grace action were taken for (each once per silence).
	OverdueFor    time.Time `firestore:"overdue_for" json:"overdue_for"`
	GraceActedFor time.Time `firestore:"grace_acted_for" json:"grace_acted_for"`

	// The license last issued: its serial, status (license.Status*),
	// fingerprint and key.
	Serial      int64     `firestore:"serial" json:"serial"`
	Status      string    `firestore:"status" json:"status,omitempty"`
	Fingerprint string    `firestore:"fingerprint" json:"fingerprint,omitempty"`
	Key         string    `firestore:"key" json:"key,omitempty"`
	IssuedAt    time.Time `firestore:"issued_at" json:"issued_at"`
}

// Activated says whether an instance is bound.
func (c CloudLicense) Activated() bool { return c.InstanceID != "" }

// CloudLicense reads a subscription's cloud license, inside tx when tx is not
// nil; found is false when it has none.
func (s *Store) CloudLicense(ctx context.Context, tx Tx, subscriptionID string) (c CloudLicense, found bool, err error) {
	err = s.Get(ctx, tx, CloudLicenses, subscriptionID, &c)
	if docstore.IsNotFound(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store.CloudLicense: %w", err)
	}
	return c, true, nil
}

// SaveCloudLicense writes c inside tx.
func (s *Store) SaveCloudLicense(tx Tx, c CloudLicense) error {
	return tx.Set(CloudLicenses, c.SubscriptionID, c)
}

// IssueActivationCode records a code's hash for a subscription inside tx:
// the index document and the cloud license that names it. It only writes:
// the caller reads CloudLicense first (reads come before writes in a
// transaction) and issues a code only to a subscription without one.
func (s *Store) IssueActivationCode(tx Tx, subscriptionID, hash, eventKey string, at time.Time) error {
	if err := tx.Set(ActivationCodes, hash, ActivationCode{SubscriptionID: subscriptionID, IssuedAt: at}); err != nil {
		return fmt.Errorf("store.IssueActivationCode: %w", err)
	}
	c := CloudLicense{SubscriptionID: subscriptionID, CodeHash: hash, CodeIssuedAt: at, CodeEventKey: eventKey}
	if err := s.SaveCloudLicense(tx, c); err != nil {
		return fmt.Errorf("store.IssueActivationCode: %w", err)
	}
	return nil
}

// ActivationCode finds the subscription of a code's hash, inside tx when tx
// is not nil; found is false for an unknown code.
func (s *Store) ActivationCode(ctx context.Context, tx Tx, hash string) (a ActivationCode, found bool, err error) {
	err = s.Get(ctx, tx, ActivationCodes, hash, &a)
	if docstore.IsNotFound(err) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("store.ActivationCode: %w", err)
	}
	return a, true, nil
}

// UpdateCloudLicense is the cloud license repository's Update: it reads the
// subscription and its cloud license and lets change decide, in one
// transaction it owns; change returns false to write nothing, and may run
// more than once. A subscription without a cloud license is ErrNotFound,
// unless create, when change starts from an empty one.
func (s *Store) UpdateCloudLicense(ctx context.Context, subscriptionID string, create bool, change func(*subscription.Subscription, *CloudLicense) (bool, error)) (CloudLicense, error) {
	var out CloudLicense
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		sub, err := s.Subscription(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		c, found, err := s.CloudLicense(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		switch {
		case !found && !create:
			return fmt.Errorf("cloud license of %s: %w", subscriptionID, ErrNotFound)
		case !found:
			c = CloudLicense{SubscriptionID: subscriptionID}
		}
		write, err := change(sub, &c)
		if err != nil {
			return err
		}
		out = c
		if !write {
			return nil
		}
		return s.SaveCloudLicense(tx, c)
	})
	if err != nil {
		return CloudLicense{}, fmt.Errorf("store.UpdateCloudLicense %s: %w", subscriptionID, err)
	}
	return out, nil
}

// CloudLicensesActivated lists the cloud licenses bound to an instance.
func (s *Store) CloudLicensesActivated(ctx context.Context) ([]CloudLicense, error) {
	all, err := All[CloudLicense](ctx, s, docstore.Query{Collection: CloudLicenses})
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if c.Activated() {
			out = append(out, c)
		}
	}
	return out, nil
}

type attemptWindow struct {
	Attempts int       `firestore:"attempts"`
	ExpireAt time.Time `firestore:"expire_at"`
}

// CountActivationAttempt counts one attempt on a code's hash in the window
// that holds now (windows of length window) and returns the attempts in it.
// The record expires with its window (a TTL policy on expire_at).
func (s *Store) CountActivationAttempt(ctx context.Context, hash string, now time.Time, window time.Duration) (int, error) {
	n, err := s.countInWindow(ctx, hash, now, window)
	if err != nil {
		return 0, fmt.Errorf("store.CountActivationAttempt: %w", err)
	}
	return n, nil
}

// CountSeatLink counts one seat link of a subscription's license in the
// window that holds now and returns the links in it. It shares the attempt
// windows' collection (and their TTL); its keys cannot meet a code's hash.
func (s *Store) CountSeatLink(ctx context.Context, subscriptionID string, now time.Time, window time.Duration) (int, error) {
	n, err := s.countInWindow(ctx, "seat-link_"+subscriptionID, now, window)
	if err != nil {
		return 0, fmt.Errorf("store.CountSeatLink: %w", err)
	}
	return n, nil
}

// countInWindow counts one event of name in the fixed window that holds now.
func (s *Store) countInWindow(ctx context.Context, name string, now time.Time, window time.Duration) (int, error) {
	start := now.Truncate(window)
	key := name + "_" + start.UTC().Format("20060102T150405")
	var n int
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var rec attemptWindow
		if err := tx.Get(ActivationAttempts, key, &rec); err != nil && !docstore.IsNotFound(err) {
			return err
		}
		n = rec.Attempts + 1
		return tx.Set(ActivationAttempts, key, attemptWindow{Attempts: n, ExpireAt: start.Add(window)})
	})
	return n, err
}

// RecordSeatReport applies one daily seat report (seat-usage's bearer-token
// report or a self-managed instance's seat link) to subscription id and keeps
// the report for audit, one per target and date (the day's highest), in one
// transaction. The
// term's maximum comes from the subscription's own RecordUsage, so late,
// repeated and out-of-order reports give the same result whichever path
// brought them.
func (s *Store) RecordSeatReport(ctx context.Context, id string, rep SeatReport, date, now time.Time) (*subscription.Subscription, subscription.Change, error) {
	type result struct {
		sub *subscription.Subscription
		c   subscription.Change
	}
	var out result
	reportID := fmt.Sprintf("%s_%s_%s", id, strings.ReplaceAll(rep.Target, ":", "-"), rep.Date)
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		sub, err := s.Subscription(ctx, tx, id)
		if err != nil {
			return err
		}
		var kept SeatReport
		err = tx.Get(SeatReports, reportID, &kept)
		if err != nil && !docstore.IsNotFound(err) {
			return err
		}
		seen := err == nil
		// GitLab counts billable users per day; the day's count is what the term's maximum is made of.
		c := sub.RecordUsage(date, rep.BillableUsers, now)
		out = result{sub, c}
		if !c.NoOp {
			if err := s.SaveSubscription(tx, sub, c, "seat_report", rep.Target+"/"+rep.Date, "seat-report_"+rep.Date+"_"+fmt.Sprint(rep.BillableUsers)); err != nil {
				return err
			}
		}
		// A replayed or lower report for a day already kept leaves the kept
		// one: the audit record shows the day's highest count, as the term's
		// maximum does.
		if seen && kept.BillableUsers >= rep.BillableUsers {
			return nil
		}
		rep.SubscriptionID, rep.ReceivedAt = id, now
		return s.SaveSeatReport(tx, reportID, rep)
	})
	if err != nil {
		return nil, subscription.Change{}, err
	}
	return out.sub, out.c, nil
}
