package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// Collections of the notifications function.
const (
	// NoticesSent keeps one document per e-mail sent, by Message-ID hash: a
	// redelivery after a successful send finds it and sends nothing.
	NoticesSent = "notices_sent"
	// NoticePreferences keeps each customer's choice, by ContactKey.
	NoticePreferences = "notice_preferences"
)

// NoticeSent records one e-mail that the SMTP server accepted. No address:
// the subscription id says whose it was.
type NoticeSent struct {
	MessageID      string    `firestore:"message_id" json:"message_id"`
	Kind           string    `firestore:"kind" json:"kind"`
	SubscriptionID string    `firestore:"subscription_id" json:"subscription_id"`
	EventID        string    `firestore:"event_id" json:"event_id"`
	SentAt         time.Time `firestore:"sent_at" json:"sent_at"`
}

// NoticePreference is a customer's choice about non-essential notices
// (renewal and reconciliation notices, trial reminders). Essential ones
// (receipts, failures, suspensions) are always sent.
type NoticePreference struct {
	OptOutNonEssential bool      `firestore:"opt_out_non_essential" json:"opt_out_non_essential"`
	UpdatedAt          time.Time `firestore:"updated_at" json:"updated_at"`
}

// ContactKey is the document id of a customer's preferences: a hash of the
// lower-cased address, so no address is a document id or in a log.
func ContactKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}

func sentKey(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return hex.EncodeToString(sum[:16])
}

// NoticeWasSent reports whether the e-mail with messageID was sent.
func (s *Store) NoticeWasSent(ctx context.Context, messageID string) (bool, error) {
	var rec NoticeSent
	err := s.Get(ctx, nil, NoticesSent, sentKey(messageID), &rec)
	if docstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// RecordNoticeSent records a sent e-mail, at once (outside the delivery's
// transaction: the send already happened).
func (s *Store) RecordNoticeSent(ctx context.Context, rec NoticeSent) error {
	return s.DB.Set(ctx, NoticesSent, sentKey(rec.MessageID), rec)
}

// NoticePreferenceFor reads the customer's preferences (the zero value,
// everything sent, when none were stored).
func (s *Store) NoticePreferenceFor(ctx context.Context, email string) (NoticePreference, error) {
	var p NoticePreference
	err := s.Get(ctx, nil, NoticePreferences, ContactKey(email), &p)
	if docstore.IsNotFound(err) {
		return NoticePreference{}, nil
	}
	return p, err
}

// SaveNoticePreference stores the customer's preferences.
func (s *Store) SaveNoticePreference(ctx context.Context, email string, p NoticePreference) error {
	return s.DB.Set(ctx, NoticePreferences, ContactKey(email), p)
}
