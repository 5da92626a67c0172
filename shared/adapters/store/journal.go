package store

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"fulfillment/shared/adapters/docstore"
)

// The consumer's bookkeeping collections (see shared/runtime/consumer).
const (
	Leases   = "consumer_leases"
	Versions = "consumer_versions"
	Attempts = "delivery_attempts"
	// ParkedKeys marks what parked deliveries await, so the event that
	// creates it finds none parked with one read instead of a query.
	ParkedKeys = "parked_keys"
)

// OutgoingRecord is an event recorded with its dedupe record, to publish
// after commit and again on a redelivery.
type OutgoingRecord struct {
	Topic string `firestore:"topic"`
	Event string `firestore:"event"`
}

// ProcessedRecord says a consumer processed an event, and what it published.
type ProcessedRecord struct {
	Consumer    string           `firestore:"consumer"`
	EventID     string           `firestore:"event_id"`
	Source      string           `firestore:"source"`
	Type        string           `firestore:"type"`
	Outgoing    []OutgoingRecord `firestore:"outgoing"`
	ProcessedAt time.Time        `firestore:"processed_at"`
	ExpireAt    time.Time        `firestore:"expire_at"`
}

// DeadLetter is what the dead_letters collection keeps of a failed delivery.
type DeadLetter struct {
	Consumer string    `firestore:"consumer" json:"consumer"`
	EventID  string    `firestore:"event_id" json:"event_id"`
	Source   string    `firestore:"source" json:"source"`
	Type     string    `firestore:"type" json:"type"`
	Reason   string    `firestore:"reason" json:"reason"`
	Event    string    `firestore:"event" json:"event"`
	At       time.Time `firestore:"at" json:"at"`
	Topic    string    `firestore:"topic" json:"topic"`
	// Awaiting, when set, is what the delivery was parked to wait for (a
	// subscription's document path): its consumer sends it again once that
	// exists, and until then it is listed and replayable like the rest.
	Awaiting string `firestore:"awaiting,omitempty" json:"awaiting,omitempty"`
}

// Processed reads the dedupe record key; found is false when there is none.
func (s *Store) Processed(ctx context.Context, tx Tx, key string) (rec ProcessedRecord, found bool, err error) {
	err = s.Get(ctx, tx, Processed, key, &rec)
	if docstore.IsNotFound(err) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// CommitProcessed runs apply and records the dedupe record key with the
// events apply returns, in one transaction (fresh). A record already there
// (an earlier or concurrent delivery of the same event committed) is
// returned instead, not fresh, with apply not run. apply may run more than
// once. The documents of reads, which apply reads, are read in the same
// request as the record.
func (s *Store) CommitProcessed(ctx context.Context, key string, rec ProcessedRecord, reads []Key, apply func(ctx context.Context, tx Tx) ([]OutgoingRecord, error)) (committed ProcessedRecord, fresh bool, err error) {
	err = s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		if err := tx.Prefetch(append([]Key{{Collection: Processed, ID: key}}, reads...)...); err != nil {
			return err
		}
		prior, found, err := s.Processed(ctx, tx, key)
		if err != nil {
			return err
		}
		if found {
			committed, fresh = prior, false
			return nil
		}
		out, err := apply(ctx, tx)
		if err != nil {
			return err
		}
		committed, fresh = rec, true
		committed.Outgoing = out
		return tx.Create(Processed, key, committed)
	})
	return committed, fresh, err
}

// CreateProcessed records the dedupe record key of work that changes no
// state and publishes nothing: one create, no transaction (fresh). A record
// already there is returned instead, not fresh.
func (s *Store) CreateProcessed(ctx context.Context, key string, rec ProcessedRecord) (committed ProcessedRecord, fresh bool, err error) {
	err = s.DB.Create(ctx, Processed, key, rec)
	if !docstore.IsAlreadyExists(err) {
		return rec, err == nil, err
	}
	prior, found, err := s.Processed(ctx, nil, key)
	if err == nil && !found {
		err = fmt.Errorf("store.CreateProcessed %s: refused as existing, then not found", key)
	}
	return prior, false, err
}

type leaseRecord struct {
	Holder    string    `firestore:"holder"`
	ExpiresAt time.Time `firestore:"expires_at"`
}

// TakeLease gives key's lease to holder until ttl from now: false when a
// live lease is held by another. An expired lease (left by a crashed
// holder) is removed, and taken on the next try.
//
// Taking is a create-if-absent, which the server checks, rather than a
// read-then-write transaction on an absent document: the Firestore emulator
// was seen letting two deliveries hold one lease that way.
func (s *Store) TakeLease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	err := s.DB.Create(ctx, Leases, key, leaseRecord{Holder: holder, ExpiresAt: time.Now().Add(ttl)})
	if !docstore.IsAlreadyExists(err) {
		return err == nil, err
	}
	var cur leaseRecord
	switch err := s.Get(ctx, nil, Leases, key, &cur); {
	case docstore.IsNotFound(err):
		return false, nil // released meanwhile: try again
	case err != nil:
		return false, err
	case time.Now().Before(cur.ExpiresAt):
		return false, nil
	}
	return false, s.ReleaseLease(ctx, key, cur.Holder)
}

// ReleaseLease removes key's lease if holder still has it. It is no
// transaction: one killed between its read and its commit would leave the
// emulator's lock on the lease, and every taker waiting for it.
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	var cur leaseRecord
	_, err := s.DB.DeleteIf(ctx, Leases, key, &cur, func() bool { return cur.Holder == holder })
	return err
}

// DeleteLease removes key's lease whoever holds it: for a holder that
// knows its lease has not expired, so no one else can hold it.
func (s *Store) DeleteLease(ctx context.Context, key string) error {
	return s.DB.Delete(ctx, Leases, key)
}

// DeleteLeaseIn is DeleteLease inside tx: the lease goes with tx's commit.
func (s *Store) DeleteLeaseIn(tx Tx, key string) error { return tx.Delete(Leases, key) }

type versionRecord struct {
	Version int64 `firestore:"version"`
}

// VersionClaim is what ProcessedOrClaim found.
type VersionClaim struct {
	Done  ProcessedRecord
	Found bool // the delivery was processed: Done is its record, nothing claimed
	// Superseded: a version newer than the one claimed was attempted.
	Superseded bool
	// Again: this version was attempted before, by a delivery whose outside
	// call may have been made without its commit.
	Again bool
}

// ProcessedOrClaim reads, under versionKey's lease, the dedupe record key
// and the version last attempted for versionKey, both in one request, with
// the documents of also (what the work reads before its outside call: each
// into its Into, with Found set). A record there is returned (Found), and
// nothing is claimed. Otherwise it reports whether a version newer than v
// was attempted (Superseded) or v itself (Again), and if neither records v
// as attempted. A v of 0 or less claims nothing: the record (and also)
// alone is read.
func (s *Store) ProcessedOrClaim(ctx context.Context, key, versionKey string, v int64, also ...*Read) (VersionClaim, error) {
	var c VersionClaim
	if v <= 0 && len(also) == 0 {
		var err error
		c.Done, c.Found, err = s.Processed(ctx, nil, key)
		return c, err
	}
	var cur versionRecord
	reads := []*Read{{Collection: Processed, ID: key, Into: &c.Done}}
	if v > 0 {
		reads = append(reads, &Read{Collection: Versions, ID: versionKey, Into: &cur})
	}
	if err := s.DB.GetAll(ctx, append(reads, also...)); err != nil {
		return VersionClaim{}, fmt.Errorf("store.ProcessedOrClaim: %w", err)
	}
	if c.Found = reads[0].Found; c.Found || v <= 0 {
		return c, nil
	}
	switch {
	case cur.Version > v:
		c.Superseded = true
	case cur.Version == v:
		c.Again = true
	default:
		if err := s.DB.Set(ctx, Versions, versionKey, versionRecord{Version: v}); err != nil {
			return VersionClaim{}, fmt.Errorf("store.ProcessedOrClaim: claim: %w", err)
		}
	}
	return c, nil
}

type attemptRecord struct {
	Failures int       `firestore:"failures"`
	Last     time.Time `firestore:"last"`
	ExpireAt time.Time `firestore:"expire_at"`
}

// CountFailedAttempt records one more failed delivery of key and returns
// how many there were; the record expires after ttl.
func (s *Store) CountFailedAttempt(ctx context.Context, key string, ttl time.Duration) (int, error) {
	var n int
	err := s.DB.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var rec attemptRecord
		if err := tx.Get(Attempts, key, &rec); err != nil && !docstore.IsNotFound(err) {
			return err
		}
		n = rec.Failures + 1
		now := time.Now().UTC()
		return tx.Set(Attempts, key, attemptRecord{Failures: n, Last: now, ExpireAt: now.Add(ttl)})
	})
	return n, err
}

// SaveDeadLetter records a delivery no retry can fix.
func (s *Store) SaveDeadLetter(ctx context.Context, key string, dl DeadLetter) error {
	return s.DB.Set(ctx, DeadLetters, key, dl)
}

// DeleteDeadLetter removes a dead letter (its delivery was sent again).
func (s *Store) DeleteDeadLetter(ctx context.Context, key string) error {
	return s.DB.Delete(ctx, DeadLetters, key)
}

// ClearFailedAttempts forgets key's failed deliveries, so a delivery sent
// again gets its full count of attempts.
func (s *Store) ClearFailedAttempts(ctx context.Context, key string) error {
	return s.DB.Delete(ctx, Attempts, key)
}

type parkedKey struct {
	Consumer string    `firestore:"consumer"`
	Awaiting string    `firestore:"awaiting"`
	At       time.Time `firestore:"at"`
}

func parkedKeyID(consumer, awaiting string) string {
	return consumer + "_" + url.PathEscape(awaiting) // a document id holds no "/"
}

// MarkParked records that consumer has a delivery parked awaiting what.
func (s *Store) MarkParked(ctx context.Context, consumer, awaiting string) error {
	return s.DB.Set(ctx, ParkedKeys, parkedKeyID(consumer, awaiting), parkedKey{Consumer: consumer, Awaiting: awaiting, At: time.Now().UTC()})
}

// IsParked says whether consumer marked a delivery parked awaiting what:
// one read, where ParkedDeadLetters is a query.
func (s *Store) IsParked(ctx context.Context, consumer, awaiting string) (bool, error) {
	var k parkedKey
	err := s.DB.Get(ctx, ParkedKeys, parkedKeyID(consumer, awaiting), &k)
	if docstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// UnmarkParked removes the mark once what it awaited exists and its
// deliveries were sent again.
func (s *Store) UnmarkParked(ctx context.Context, consumer, awaiting string) error {
	return s.DB.Delete(ctx, ParkedKeys, parkedKeyID(consumer, awaiting))
}

// ParkedDeadLetters lists, by key, consumer's dead letters parked awaiting
// what: two equality filters, which Firestore serves from its single-field
// indexes.
func (s *Store) ParkedDeadLetters(ctx context.Context, consumer, awaiting string) (map[string]DeadLetter, error) {
	return ByID[DeadLetter](ctx, s, docstore.Query{Collection: DeadLetters, Where: []docstore.Filter{
		{Field: "awaiting", Op: docstore.Eq, Value: awaiting},
		{Field: "consumer", Op: docstore.Eq, Value: consumer},
	}})
}
