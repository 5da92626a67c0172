// Package store is the Firestore adapter: the collections every function
// shares and typed reads and writes on them. Writes that belong to a state
// change take the caller's transaction, so the dedupe record, the state and
// the outgoing events commit together (see shared/consumer).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
var ErrNotFound = errors.New("not found")

// Store wraps the Firestore client.
type Store struct {
	Client *firestore.Client
}

// Open connects to Firestore for project (the emulator when FIRESTORE_EMULATOR_HOST is set).
func Open(ctx context.Context, project string) (*Store, error) {
	c, err := firestore.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("store.Open: %w", err)
	}
	return &Store{Client: c}, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.Client.Close() }

// Doc is a document reference in a top-level collection.
func (s *Store) Doc(collection, id string) *firestore.DocumentRef {
	return s.Client.Collection(collection).Doc(id)
}

// Get reads a document into v, inside tx when tx is not nil.
func (s *Store) Get(ctx context.Context, tx *firestore.Transaction, ref *firestore.DocumentRef, v any) error {
	var snap *firestore.DocumentSnapshot
	var err error
	if tx != nil {
		snap, err = tx.Get(ref)
	} else {
		snap, err = ref.Get(ctx)
	}
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("store.Get %s: %w", ref.Path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store.Get %s: %w", ref.Path, err)
	}
	if err := snap.DataTo(v); err != nil {
		return fmt.Errorf("store.Get %s: %w", ref.Path, err)
	}
	return nil
}

// Subscription reads a subscription, inside tx when tx is not nil.
func (s *Store) Subscription(ctx context.Context, tx *firestore.Transaction, id string) (*subscription.Subscription, error) {
	var sub subscription.Subscription
	if err := s.Get(ctx, tx, s.Doc(Subscriptions, id), &sub); err != nil {
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

// SaveSubscription writes sub and the history record of change inside tx.
// causeKey names the input that caused it, so a retried write keeps one record.
func (s *Store) SaveSubscription(tx *firestore.Transaction, sub *subscription.Subscription, change subscription.Change, causeType, causeID, causeKey string) error {
	ref := s.Doc(Subscriptions, sub.ID)
	if !change.NoOp {
		if err := tx.Set(ref, sub); err != nil {
			return fmt.Errorf("store.SaveSubscription: %w", err)
		}
	}
	h := HistoryRecord{
		From: string(change.From), To: string(change.To), Event: change.Event, Reason: change.Reason,
		Cause: causeType, CauseID: causeID, Version: sub.Version, NoOp: change.NoOp, Recorded: time.Now().UTC(),
	}
	if err := tx.Set(ref.Collection(History).Doc(causeKey), h); err != nil {
		return fmt.Errorf("store.SaveSubscription history: %w", err)
	}
	return nil
}

// SubscriptionHistory lists a subscription's transitions, oldest first.
func (s *Store) SubscriptionHistory(ctx context.Context, id string) ([]HistoryRecord, error) {
	docs, err := s.Doc(Subscriptions, id).Collection(History).OrderBy("recorded", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("store.SubscriptionHistory: %w", err)
	}
	out := make([]HistoryRecord, 0, len(docs))
	for _, d := range docs {
		var h HistoryRecord
		if err := d.DataTo(&h); err != nil {
			return nil, fmt.Errorf("store.SubscriptionHistory: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

// IsNotFound reports whether err says a document does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
