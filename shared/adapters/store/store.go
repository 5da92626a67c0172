// Package store is the repositories every function shares, written once
// over the docstore port: subscriptions (with their history) and the
// collections and queries of each function. Which database sits below is
// chosen at start (firestore.OpenStore in production, memory in tests); writes that belong to a state change take the caller's
// transaction, so the dedupe record, the state and the outgoing events
// commit together (see shared/runtime/consumer).
package store

import (
	"context"
	"fmt"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/subscription"
)

// Collection names.
const (
	Subscriptions = "subscriptions"
	History       = "history"
	WebhookEvents = "webhook_events"
	Processed     = "processed"
	DeadLetters   = "dead_letters"
	Entitlements  = "entitlements"
	Licenses      = "licenses"
	CRMSync       = "crm_sync"
	Alerts        = "alerts"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = docstore.ErrNotFound

// IsNotFound reports whether err says a document does not exist.
func IsNotFound(err error) bool { return docstore.IsNotFound(err) }

// Tx is one attempt of a transaction (see docstore.Tx).
type Tx = docstore.Tx

// Read is one document of a GetAll (see docstore.Read).
type Read = docstore.Read

// Key names one document (see docstore.Key).
type Key = docstore.Key

// Store is the repositories on one database.
type Store struct {
	DB docstore.DB
}

// New returns the repositories on db.
func New(db docstore.DB) *Store { return &Store{DB: db} }

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Get reads collection/id into v, inside tx when tx is not nil.
func (s *Store) Get(ctx context.Context, tx Tx, collection, id string, v any) error {
	return docstore.Get(ctx, s.DB, tx, collection, id, v)
}

// RunTx runs fn in a transaction; fn may run more than once.
func (s *Store) RunTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return s.DB.RunTx(ctx, fn)
}

// Subscription reads a subscription, inside tx when tx is not nil.
func (s *Store) Subscription(ctx context.Context, tx Tx, id string) (*subscription.Subscription, error) {
	var sub subscription.Subscription
	if err := s.Get(ctx, tx, Subscriptions, id, &sub); err != nil {
		return nil, err
	}
	return &sub, nil
}

// HistoryRecord is one transition of a subscription, kept for audit.
type HistoryRecord struct {
	From     string    `firestore:"from" json:"from"`
	To       string    `firestore:"to" json:"to"`
	Event    string    `firestore:"event" json:"event"`
	Reason   string    `firestore:"reason" json:"reason"`
	Cause    string    `firestore:"cause" json:"cause"`
	CauseID  string    `firestore:"cause_id" json:"cause_id"`
	Version  int64     `firestore:"version" json:"version"`
	NoOp     bool      `firestore:"no_op" json:"no_op"`
	Recorded time.Time `firestore:"recorded" json:"recorded"`
}

// Cause names the input that caused a change: its type, its id, and the key
// of its history record (so a retried write keeps one record).
type Cause struct {
	Type, ID, Key string
}

// SaveSubscription writes sub and the history record of change inside tx.
func (s *Store) SaveSubscription(tx Tx, sub *subscription.Subscription, change subscription.Change, causeType, causeID, causeKey string) error {
	if !change.NoOp {
		if err := tx.Set(Subscriptions, sub.ID, sub); err != nil {
			return fmt.Errorf("store.SaveSubscription: %w", err)
		}
	}
	h := HistoryRecord{
		From: string(change.From), To: string(change.To), Event: change.Event, Reason: change.Reason,
		Cause: causeType, CauseID: causeID, Version: sub.Version, NoOp: change.NoOp, Recorded: time.Now().UTC(),
	}
	if err := tx.Set(historyOf(sub.ID), causeKey, h); err != nil {
		return fmt.Errorf("store.SaveSubscription history: %w", err)
	}
	return nil
}

// UpdateSubscription is the subscription repository's Update: it reads the
// subscription, lets change decide, and saves the result with its history
// record, in one transaction it owns. change may run more than once.
func (s *Store) UpdateSubscription(ctx context.Context, id string, cause Cause, change func(*subscription.Subscription) (subscription.Change, error)) (*subscription.Subscription, subscription.Change, error) {
	type result struct {
		sub *subscription.Subscription
		c   subscription.Change
	}
	var out result
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		sub, err := s.Subscription(ctx, tx, id)
		if err != nil {
			return err
		}
		c, err := change(sub)
		if err != nil {
			return err
		}
		out = result{sub, c}
		return s.SaveSubscription(tx, sub, c, cause.Type, cause.ID, cause.Key)
	})
	if err != nil {
		return nil, subscription.Change{}, fmt.Errorf("store.UpdateSubscription %s: %w", id, err)
	}
	return out.sub, out.c, nil
}

func historyOf(id string) string { return Subscriptions + "/" + id + "/" + History }

// SubscriptionHistory lists a subscription's transitions, oldest first.
func (s *Store) SubscriptionHistory(ctx context.Context, id string) ([]HistoryRecord, error) {
	return All[HistoryRecord](ctx, s, docstore.Query{Collection: historyOf(id), OrderBy: []string{"recorded"}})
}

// All runs q and decodes every document as a T.
func All[T any](ctx context.Context, s *Store, q docstore.Query) ([]T, error) {
	docs, err := s.DB.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store.All %s: %w", q.Collection, err)
	}
	out := make([]T, 0, len(docs))
	for _, d := range docs {
		var v T
		if err := d.DataTo(&v); err != nil {
			return nil, fmt.Errorf("store.All %s/%s: %w", q.Collection, d.ID, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ByID runs q and decodes every document as a T, keyed by document id.
func ByID[T any](ctx context.Context, s *Store, q docstore.Query) (map[string]T, error) {
	docs, err := s.DB.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store.ByID %s: %w", q.Collection, err)
	}
	out := make(map[string]T, len(docs))
	for _, d := range docs {
		var v T
		if err := d.DataTo(&v); err != nil {
			return nil, fmt.Errorf("store.ByID %s/%s: %w", q.Collection, d.ID, err)
		}
		out[d.ID] = v
	}
	return out, nil
}
