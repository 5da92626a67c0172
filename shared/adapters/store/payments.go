package store

import (
	"context"
	"fmt"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/ledger"
)

// PaymentRefs indexes our charges' invoices and payment intents by id, so a
// refund or a dispute, which carries neither our metadata nor the
// subscription, finds the subscription and ledger line it concerns.
const PaymentRefs = "payment_refs"

// PaymentRef names the ledger line a payment belongs to.
type PaymentRef struct {
	SubscriptionID string `firestore:"subscription_id" json:"subscription_id"`
	Key            string `firestore:"key" json:"key"`
	InvoiceID      string `firestore:"invoice_id" json:"invoice_id"`
}

// SavePaymentRef indexes ref under id (an invoice or payment intent id) inside tx.
func (s *Store) SavePaymentRef(tx Tx, id string, ref PaymentRef) error {
	if id == "" {
		return nil
	}
	if err := tx.Set(PaymentRefs, id, ref); err != nil {
		return fmt.Errorf("store.SavePaymentRef: %w", err)
	}
	return nil
}

// FindPaymentRef returns the ref of the first id indexed; found is false
// when none is.
func (s *Store) FindPaymentRef(ctx context.Context, ids ...string) (ref PaymentRef, found bool, err error) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		err := s.Get(ctx, nil, PaymentRefs, id, &ref)
		switch {
		case err == nil:
			return ref, true, nil
		case !docstore.IsNotFound(err):
			return ref, false, fmt.Errorf("store.FindPaymentRef: %w", err)
		}
	}
	return ref, false, nil
}

// IndexPayment indexes a paid ledger line of subscription subID inside tx:
// under the payment intent that paid it and, for an invoice of its own
// (not the checkout's), under its invoice id. Whoever learns of the payment
// (its webhook, or Stripe asked after the webhook was lost) indexes it, so
// its refunds and disputes find it either way.
func (s *Store) IndexPayment(tx Tx, subID string, line ledger.Line, paymentIntentID string) error {
	ref := PaymentRef{SubscriptionID: subID, Key: line.Key, InvoiceID: line.InvoiceID}
	if err := s.SavePaymentRef(tx, paymentIntentID, ref); err != nil {
		return err
	}
	if line.InvoiceID != "" && line.Kind != ledger.Purchase {
		return s.SavePaymentRef(tx, line.InvoiceID, ref)
	}
	return nil
}
