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

// NoticeSentOrParked reports, in one request, whether the e-mail with
// messageID was sent and whether it is parked for the sweep: the two reads
// a delivery makes before it sends, on its way to the customer.
func (s *Store) NoticeSentOrParked(ctx context.Context, messageID string) (sent, parked bool, err error) {
	var rec NoticeSent
	var p NoticePending
	reads := []*docstore.Read{{Collection: NoticesSent, ID: sentKey(messageID), Into: &rec}, {Collection: NoticesPending, ID: sentKey(messageID), Into: &p}}
	if err := s.DB.GetAll(ctx, reads); err != nil {
		return false, false, err
	}
	return reads[0].Found, reads[1].Found, nil
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
	return s.SaveNoticePreferenceByKey(ctx, ContactKey(email), p)
}

// SaveNoticePreferenceByKey stores the preferences of the customer whose
// ContactKey is contact: what a signed opt-out link names.
func (s *Store) SaveNoticePreferenceByKey(ctx context.Context, contact string, p NoticePreference) error {
	return s.DB.Set(ctx, NoticePreferences, contact, p)
}

// NoticesPending keeps each e-mail the SMTP server could not take for a
// passing reason (down, 4xx), by Message-ID hash, until a sweep sends it:
// an outage longer than Pub/Sub's redelivery budget must not turn notices
// into dead letters that wait for a person.
const NoticesPending = "notices_pending"

// NoticePending is an e-mail as it was rendered when its event was handled:
// the sweep sends exactly this, with the same Message-ID, rather than
// deciding again from a subscription that has moved on (other dunning
// dates, another plan). It holds the recipient's address, as the
// subscription does; the address is never logged.
type NoticePending struct {
	MessageID      string            `firestore:"message_id" json:"message_id"`
	Kind           string            `firestore:"kind" json:"kind"`
	SubscriptionID string            `firestore:"subscription_id" json:"subscription_id"`
	EventID        string            `firestore:"event_id" json:"event_id"`
	To             string            `firestore:"to" json:"-"`
	ToName         string            `firestore:"to_name" json:"-"`
	Subject        string            `firestore:"subject" json:"subject"`
	Text           string            `firestore:"text" json:"-"`
	HTML           string            `firestore:"html" json:"-"`
	Headers        map[string]string `firestore:"headers" json:"-"`
	// Date is the message's Date header: when it was first meant to go.
	Date      time.Time `firestore:"date" json:"date"`
	ParkedAt  time.Time `firestore:"parked_at" json:"parked_at"`
	LastError string    `firestore:"last_error" json:"last_error"`
	// Refused is set when the server refused it for good (5xx) after the
	// outage: kept for a person to see, no longer swept.
	Refused bool `firestore:"refused" json:"refused"`
}

// ParkNotice keeps an e-mail for the sweep. Parking one already parked
// keeps the first: its content and Date are what the customer gets.
func (s *Store) ParkNotice(ctx context.Context, p NoticePending) error {
	err := s.DB.Create(ctx, NoticesPending, sentKey(p.MessageID), p)
	if docstore.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// PendingNotices lists up to limit parked e-mails still to send.
func (s *Store) PendingNotices(ctx context.Context, limit int) ([]NoticePending, error) {
	return All[NoticePending](ctx, s, docstore.Query{Collection: NoticesPending,
		Where: []docstore.Filter{{Field: "refused", Op: docstore.Eq, Value: false}}, Limit: limit})
}

// PendingNotice reads one parked e-mail; found is false once it is settled.
func (s *Store) PendingNotice(ctx context.Context, messageID string) (p NoticePending, found bool, err error) {
	err = s.Get(ctx, nil, NoticesPending, sentKey(messageID), &p)
	if docstore.IsNotFound(err) {
		return p, false, nil
	}
	return p, err == nil, err
}

// ClaimPendingNotice takes the parked e-mail for one sweep alone (two sweeps
// at once must not both send it), for ttl; claimed is false when another
// sweep holds it. release gives it back.
func (s *Store) ClaimPendingNotice(ctx context.Context, messageID, holder string, ttl time.Duration) (claimed bool, err error) {
	return s.TakeLease(ctx, pendingLease(messageID), holder, ttl)
}

// ReleasePendingNotice ends the sweep's claim on a parked e-mail.
func (s *Store) ReleasePendingNotice(ctx context.Context, messageID, holder string) error {
	return s.ReleaseLease(ctx, pendingLease(messageID), holder)
}

// NotePendingFailure records why the last sweep could not send it, and
// whether the server refused it for good.
func (s *Store) NotePendingFailure(ctx context.Context, p NoticePending, reason string, refused bool) error {
	p.LastError, p.Refused = reason, refused
	return s.DB.Set(ctx, NoticesPending, sentKey(p.MessageID), p)
}

// SettlePendingNotice removes a parked e-mail once it is sent (recorded in
// notices_sent first).
func (s *Store) SettlePendingNotice(ctx context.Context, messageID string) error {
	return s.DB.Delete(ctx, NoticesPending, sentKey(messageID))
}

func pendingLease(messageID string) string { return "notice-pending_" + sentKey(messageID) }
