package store

import (
	"context"
	"fmt"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
)

// DueReviews lists up to limit subscriptions to review at now, in review
// time then id order, after the cursor (afterID empty: from the start). A
// range and order on one field: Firestore's automatic single-field index
// serves it, no composite index needed.
func (s *Store) DueReviews(ctx context.Context, now time.Time, afterReview time.Time, afterID string, limit int) ([]catalog.Due, error) {
	q := docstore.Query{
		Collection: Subscriptions,
		Where:      []docstore.Filter{{Field: "next_review_at", Op: docstore.Le, Value: now}},
		OrderBy:    []string{"next_review_at", docstore.DocumentID},
		Select:     []string{"next_review_at", "version"},
		Limit:      limit,
	}
	if afterID != "" {
		q.StartAfter = []any{afterReview, afterID}
	}
	docs, err := s.DB.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store.DueReviews: %w", err)
	}
	out := make([]catalog.Due, 0, len(docs))
	for _, d := range docs {
		var v struct {
			NextReviewAt time.Time `firestore:"next_review_at"`
			Version      int64     `firestore:"version"`
		}
		if err := d.DataTo(&v); err != nil {
			return nil, fmt.Errorf("store.DueReviews %s: %w", d.ID, err)
		}
		out = append(out, catalog.Due{SubscriptionID: d.ID, ReviewAt: v.NextReviewAt, Version: v.Version})
	}
	return out, nil
}

// SaveNextReview writes the subscription read in tx after only its next
// review changed, with no history record: a review that found nothing to
// do is not a change.
func (s *Store) SaveNextReview(tx Tx, sub *subscription.Subscription) error {
	return tx.Set(Subscriptions, sub.ID, sub)
}

// SubscriptionsWhere lists the subscriptions whose field (a dotted path
// such as order.namespace_id) equals value.
func (s *Store) SubscriptionsWhere(ctx context.Context, field string, value any) ([]subscription.Subscription, error) {
	return All[subscription.Subscription](ctx, s, docstore.Query{
		Collection: Subscriptions, Where: []docstore.Filter{{Field: field, Op: docstore.Eq, Value: value}},
	})
}

// CountSince counts the documents of collection whose field is at or after since.
func (s *Store) CountSince(ctx context.Context, collection, field string, since time.Time) (int64, error) {
	return s.DB.Count(ctx, docstore.Query{Collection: collection, Where: []docstore.Filter{{Field: field, Op: docstore.Ge, Value: since}}})
}
