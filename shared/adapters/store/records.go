package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// This file holds the storage model and the repository methods of the
// collections one function owns each: webhook events (checkout-webhook),
// CRM sync records (crm-push), the alert and the payment failures it
// counts (failed-payment-alerting), and seat reports (seat-usage).

// Collections owned by one function each.
const (
	PaymentFailures = "payment_failures"
	SeatReports     = "seat_reports"
)

// WebhookEvent is what webhook_events keeps of each Stripe event: the raw
// body for audit and replay, and how far it got.
type WebhookEvent struct {
	ID           string    `firestore:"id" json:"id"`
	StripeType   string    `firestore:"stripe_type" json:"stripe_type"`
	InternalType string    `firestore:"internal_type" json:"internal_type"`
	Livemode     bool      `firestore:"livemode" json:"livemode"`
	Created      time.Time `firestore:"created" json:"created"`
	ReceivedAt   time.Time `firestore:"received_at" json:"received_at"`
	Status       string    `firestore:"status" json:"status"`
	Invalid      string    `firestore:"invalid" json:"invalid,omitempty"`
	Deliveries   int64     `firestore:"deliveries" json:"deliveries"`
	Raw          string    `firestore:"raw" json:"-"`
	TraceParent  string    `firestore:"traceparent" json:"traceparent"`
}

// CreateWebhookEvent stores ev unless it is stored already (a repeated
// delivery), in which case the delivery is counted and the stored record
// is returned, and created is false.
func (s *Store) CreateWebhookEvent(ctx context.Context, ev WebhookEvent) (stored WebhookEvent, created bool, err error) {
	err = s.DB.Create(ctx, WebhookEvents, ev.ID, ev)
	if err == nil {
		return ev, true, nil
	}
	if !docstore.IsAlreadyExists(err) {
		return WebhookEvent{}, false, fmt.Errorf("store.CreateWebhookEvent: %w", err)
	}
	if err := s.CountWebhookDelivery(ctx, ev.ID); err != nil {
		return WebhookEvent{}, false, fmt.Errorf("store.CreateWebhookEvent: %w", err)
	}
	if stored, err = s.WebhookEvent(ctx, ev.ID); err != nil {
		return WebhookEvent{}, false, fmt.Errorf("store.CreateWebhookEvent: %w", err)
	}
	return stored, false, nil
}

// CountWebhookDelivery counts one more delivery of a stored event: one
// increment, no read and no transaction, so concurrent repeats lose none.
func (s *Store) CountWebhookDelivery(ctx context.Context, id string) error {
	if err := s.DB.Increment(ctx, WebhookEvents, id, "deliveries", 1); err != nil {
		return fmt.Errorf("store.CountWebhookDelivery: %w", err)
	}
	return nil
}

// countWorkers is how many increments CountWebhookDeliveries sends at once:
// enough for the Firestore adapter's write groups to fill whole requests.
const countWorkers = 32

// CountWebhookDeliveries adds each event's count of deliveries to its
// record, as CountWebhookDelivery does for one, and returns the error of
// each event whose count was not added (ErrNotFound: no record).
func (s *Store) CountWebhookDeliveries(ctx context.Context, counts map[string]int64) map[string]error {
	ids := make(chan string)
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for range min(countWorkers, len(counts)) {
		wg.Go(func() {
			for id := range ids {
				if err := s.DB.Increment(ctx, WebhookEvents, id, "deliveries", counts[id]); err != nil {
					mu.Lock()
					errs[id] = fmt.Errorf("store.CountWebhookDeliveries: %w", err)
					mu.Unlock()
				}
			}
		})
	}
	for id := range counts {
		ids <- id
	}
	close(ids)
	wg.Wait()
	return errs
}

// SaveWebhookEvent writes ev as it is (its status moved on): one write, no read.
func (s *Store) SaveWebhookEvent(ctx context.Context, ev WebhookEvent) error {
	if err := s.DB.Set(ctx, WebhookEvents, ev.ID, ev); err != nil {
		return fmt.Errorf("store.SaveWebhookEvent: %w", err)
	}
	return nil
}

// WebhookEvent reads one stored webhook event.
func (s *Store) WebhookEvent(ctx context.Context, id string) (WebhookEvent, error) {
	var ev WebhookEvent
	err := s.Get(ctx, nil, WebhookEvents, id, &ev)
	return ev, err
}

// CRMSynced is the version of a subscription Salesforce last acknowledged.
type CRMSynced struct {
	SubscriptionID string    `firestore:"subscription_id" json:"subscription_id"`
	Version        int64     `firestore:"version" json:"version"`
	Status         string    `firestore:"status" json:"status"`
	SyncedAt       time.Time `firestore:"synced_at" json:"synced_at"`
}

// CRMSync reads the sync record of a subscription, inside tx when tx is not
// nil; found is false when Salesforce has none.
func (s *Store) CRMSync(ctx context.Context, tx Tx, id string) (rec CRMSynced, found bool, err error) {
	err = s.Get(ctx, tx, CRMSync, id, &rec)
	if docstore.IsNotFound(err) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// SaveCRMSync records what Salesforce acknowledged, inside tx.
func (s *Store) SaveCRMSync(tx Tx, rec CRMSynced) error {
	return tx.Set(CRMSync, rec.SubscriptionID, rec)
}

// AlertState is an alert's document: firing from one crossing until the
// window falls back under the threshold.
type AlertState struct {
	Firing        bool      `firestore:"firing" json:"firing"`
	DedupKey      string    `firestore:"dedup_key" json:"dedup_key"`
	Count         int64     `firestore:"count" json:"count"`
	Since         time.Time `firestore:"since" json:"since"`
	SlackSent     bool      `firestore:"slack_sent" json:"slack_sent"`
	PagerDutySent bool      `firestore:"pagerduty_sent" json:"pagerduty_sent"`
	Crossings     int64     `firestore:"crossings" json:"crossings"`
	// Claims name the delivery sending to each destination, so concurrent
	// deliveries do not both send.
	Claims map[string]Claim `firestore:"claims" json:"claims,omitempty"`
}

// Claim records which delivery is sending an alert to a destination.
type Claim struct {
	By string    `firestore:"by" json:"by"`
	At time.Time `firestore:"at" json:"at"`
}

// UpdateAlert reads alert id (the zero state when absent) and lets change
// decide, in a transaction it owns; change returns false to write nothing.
// change may run more than once.
func (s *Store) UpdateAlert(ctx context.Context, id string, change func(*AlertState) bool) (AlertState, error) {
	var out AlertState
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var cur AlertState
		if err := tx.Get(Alerts, id, &cur); err != nil && !docstore.IsNotFound(err) {
			return err
		}
		write := change(&cur)
		out = cur
		if !write {
			return nil
		}
		return tx.Set(Alerts, id, cur)
	})
	if err != nil {
		return AlertState{}, fmt.Errorf("store.UpdateAlert %s: %w", id, err)
	}
	return out, nil
}

// PaymentFailureRecord is one payment failure, counted by when it happened.
type PaymentFailureRecord struct {
	SubscriptionID  string    `firestore:"subscription_id" json:"subscription_id"`
	ProviderEventID string    `firestore:"provider_event_id" json:"provider_event_id"`
	AmountCents     int64     `firestore:"amount_cents" json:"amount_cents"`
	At              time.Time `firestore:"at" json:"at"`
}

// SavePaymentFailure records one failure inside tx, under key (one per
// failure event, so a redelivery counts once).
func (s *Store) SavePaymentFailure(tx Tx, key string, rec PaymentFailureRecord) error {
	return tx.Set(PaymentFailures, key, rec)
}

// PaymentFailuresSince counts the failures that happened at or after since.
func (s *Store) PaymentFailuresSince(ctx context.Context, since time.Time) (int64, error) {
	return s.CountSince(ctx, PaymentFailures, "at", since)
}

// SeatReport is one daily seat report as received.
type SeatReport struct {
	SubscriptionID     string    `firestore:"subscription_id" json:"subscription_id"`
	Target             string    `firestore:"target" json:"target"`
	Date               string    `firestore:"date" json:"date"`
	BillableUsers      int       `firestore:"billable_users" json:"billable_users"`
	MaxHistoricalUsers int       `firestore:"max_historical_users" json:"max_historical_users"`
	ReceivedAt         time.Time `firestore:"received_at" json:"received_at"`
}

// SaveSeatReport keeps a report for audit inside tx, one per target and date.
func (s *Store) SaveSeatReport(tx Tx, id string, r SeatReport) error {
	return tx.Set(SeatReports, id, r)
}
