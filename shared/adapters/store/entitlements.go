package store

import (
	"context"
	"fmt"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// EntitlementStatus is the outcome an entitlement records (stored as is).
type EntitlementStatus string

// The statuses of an entitlement.
const (
	// EntitlementActive: the subscription's paid plan was applied.
	EntitlementActive EntitlementStatus = "active"
	// EntitlementRevoked: the free plan was applied (suspended or ended).
	EntitlementRevoked EntitlementStatus = "revoked"
	// EntitlementFailed: GitLab refused the order; the next delivery tries again.
	EntitlementFailed EntitlementStatus = "failed"
)

// Entitlement is what provisioning last applied for a subscription.
type Entitlement struct {
	SubscriptionID string            `firestore:"subscription_id" json:"subscription_id"`
	Target         string            `firestore:"target" json:"target"`
	PlanCode       string            `firestore:"plan_code" json:"plan_code"`
	Seats          int               `firestore:"seats" json:"seats"`
	StartsOn       string            `firestore:"starts_on" json:"starts_on"`
	EndsOn         string            `firestore:"ends_on" json:"ends_on"`
	StorageGB      int               `firestore:"storage_gb" json:"storage_gb"`
	ComputeMinutes int               `firestore:"compute_minutes" json:"compute_minutes"`
	Status         EntitlementStatus `firestore:"status" json:"status"`
	Version        int64             `firestore:"version" json:"version"`
	PurchaseXID    string            `firestore:"purchase_xid" json:"purchase_xid"`
	LicenseID      string            `firestore:"license_id" json:"license_id,omitempty"`
	Error          string            `firestore:"error" json:"error,omitempty"`
	AppliedAt      time.Time         `firestore:"applied_at" json:"applied_at"`
}

// Entitlement reads a subscription's entitlement, inside tx when tx is not
// nil; found is false when none was applied.
func (s *Store) Entitlement(ctx context.Context, tx Tx, id string) (e Entitlement, found bool, err error) {
	err = s.Get(ctx, tx, Entitlements, id, &e)
	if docstore.IsNotFound(err) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("store.Entitlement: %w", err)
	}
	return e, true, nil
}

// EntitlementsOf lists the entitlements applied to target (a namespace or
// an instance), of every subscription that had it.
func (s *Store) EntitlementsOf(ctx context.Context, target string) ([]Entitlement, error) {
	return All[Entitlement](ctx, s, docstore.Query{Collection: Entitlements, Where: []docstore.Filter{{Field: "target", Op: docstore.Eq, Value: target}}})
}

// SaveEntitlement records what was applied, inside tx.
func (s *Store) SaveEntitlement(tx Tx, e Entitlement) error {
	return tx.Set(Entitlements, e.SubscriptionID, e)
}

// License is a signed license as issued.
type License struct {
	SubscriptionID string    `firestore:"subscription_id" json:"subscription_id"`
	Payload        string    `firestore:"payload" json:"payload"`
	Signature      string    `firestore:"signature" json:"signature"`
	IssuedAt       time.Time `firestore:"issued_at" json:"issued_at"`
}

// SaveLicense keeps a signed license under its id, inside tx.
func (s *Store) SaveLicense(tx Tx, id string, l License) error {
	return tx.Set(Licenses, id, l)
}
