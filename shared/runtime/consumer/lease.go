package consumer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/logging"
)

// Journal is the consumer's bookkeeping, in the same database as the state
// it guards (store.Store implements it over either docstore adapter).
type Journal interface {
	// Processed reads a dedupe record, inside tx when tx is not nil.
	Processed(ctx context.Context, tx store.Tx, key string) (store.ProcessedRecord, bool, error)
	// CommitProcessed runs apply and creates the dedupe record in one
	// transaction (fresh), or returns the record an earlier or concurrent
	// delivery committed (not fresh; apply did not run). The documents of
	// reads are read with the record, in one request.
	CommitProcessed(ctx context.Context, key string, rec store.ProcessedRecord, reads []store.Key, apply func(context.Context, store.Tx) ([]store.OutgoingRecord, error)) (committed store.ProcessedRecord, fresh bool, err error)
	// CreateProcessed creates the dedupe record of work with no state
	// change and nothing to publish, in one write (fresh), or returns the
	// record an earlier or concurrent delivery created (not fresh).
	CreateProcessed(ctx context.Context, key string, rec store.ProcessedRecord) (committed store.ProcessedRecord, fresh bool, err error)
	TakeLease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, key, holder string) error
	// DeleteLease removes key's lease unchecked: only for a holder whose
	// lease cannot have expired (leaseHeldSurely). DeleteLeaseIn does it in
	// tx, so it is gone when tx commits.
	DeleteLease(ctx context.Context, key string) error
	DeleteLeaseIn(tx store.Tx, key string) error
	// ProcessedOrClaim reads, in one request under versionKey's lease, the
	// dedupe record key (Found: returned, nothing claimed), the version
	// last attempted and the documents of also, and records v as attempted
	// unless it (Again) or a newer one (Superseded) was.
	ProcessedOrClaim(ctx context.Context, key, versionKey string, v int64, also ...*store.Read) (store.VersionClaim, error)
	CountFailedAttempt(ctx context.Context, key string, ttl time.Duration) (int, error)
	ClearFailedAttempts(ctx context.Context, key string) error
	SaveDeadLetter(ctx context.Context, key string, dl store.DeadLetter) error
	DeleteDeadLetter(ctx context.Context, key string) error
	// ParkedDeadLetters lists, by key, consumer's dead letters parked
	// awaiting what (park.go); MarkParked, IsParked and UnmarkParked keep
	// the mark that spares the list's query where nothing is parked.
	ParkedDeadLetters(ctx context.Context, consumer, awaiting string) (map[string]store.DeadLetter, error)
	MarkParked(ctx context.Context, consumer, awaiting string) error
	IsParked(ctx context.Context, consumer, awaiting string) (bool, error)
	UnmarkParked(ctx context.Context, consumer, awaiting string) error
}

// The bookkeeping collections, for the operator tools.
const (
	Leases   = store.Leases
	Versions = store.Versions
	Attempts = store.Attempts
)

// leaseTTL bounds how long a crashed holder blocks the subscription's next
// delivery; effectBudget, shorter, bounds the outside calls made under the
// lease, so they cannot outlive it and overlap the next holder's.
const (
	leaseTTL     = 20 * time.Second
	effectBudget = 15 * time.Second
)

// leaseHeldSurely is how long after taking it a holder knows its lease is
// still its own: another taker removes a lease only once its clock is past
// the expiry (leaseTTL on), so within this margin of clock skew the
// release is one delete, with no read of the holder first.
const leaseHeldSurely = leaseTTL - 5*time.Second

// ErrBusy says another delivery holds the lease: transient, Pub/Sub
// redelivers after a backoff, by when the holder has committed.
var ErrBusy = errors.New("another delivery for the same key is in flight")

// leaseWait is how long a delivery waits for a lease held by a working
// delivery (they hold it for milliseconds) before it gives up as busy.
const leaseWait = 3 * time.Second

// lease takes the lease on key for this delivery alone (two deliveries of
// the same event must not overlap either). It waits up to leaseWait for the
// current holder before answering ErrBusy.
func (p *Processor) lease(ctx context.Context, key string) (*heldLease, error) {
	name := p.Name + "_" + key
	holder := rand.Text()
	deadline := time.Now().Add(leaseWait)
	for {
		taken := p.now()
		took, err := p.Journal.TakeLease(ctx, name, holder, leaseTTL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("consumer.lease %s: %w", key, err)
		case took:
			return &heldLease{journal: p.Journal, name: name, key: key, holder: holder, taken: taken, now: p.now}, nil
		case time.Now().After(deadline):
			return nil, fmt.Errorf("consumer.lease %s: %w", key, ErrBusy)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25*time.Millisecond + time.Duration(mrand.IntN(50))*time.Millisecond):
		}
	}
}

// Hold runs fn holding the lease that the consumer named owner takes for
// work serialized on key (Work.Serialize), so fn and that work never
// overlap: for a caller outside the consumer that changes what its work
// changes. It waits for the lease as a delivery does (ErrBusy after
// leaseWait), and fn gets the effect budget, within the lease's life.
func Hold(ctx context.Context, j Journal, owner, key string, fn func(ctx context.Context) error) error {
	p := &Processor{Name: owner, Journal: j}
	held, err := p.lease(ctx, key)
	if err != nil {
		return err
	}
	defer held.release(ctx)
	ctx, cancel := context.WithTimeout(ctx, effectBudget)
	defer cancel()
	return fn(ctx)
}

// heldLease is a lease this delivery took. It goes in the transaction that
// records the work when it surely still is this delivery's (no request of
// its own), else after, by release.
type heldLease struct {
	journal            Journal
	name, key, holder  string
	taken              time.Time
	now                func() time.Time
	inTx               bool // the latest transaction attempt deletes it
	attempted, dropped bool // some attempt did; a committed one did
}

// surely says the lease cannot have expired and passed to another taker.
func (l *heldLease) surely() bool { return l.now().Sub(l.taken) < leaseHeldSurely }

// deleteIn deletes the lease in tx while it surely is this delivery's;
// every attempt of the transaction decides anew. A nil lease does nothing.
func (l *heldLease) deleteIn(tx store.Tx) error {
	if l == nil {
		return nil
	}
	l.inTx = l.surely()
	if !l.inTx {
		return nil
	}
	l.attempted = true
	return l.journal.DeleteLeaseIn(tx, l.name)
}

// committed records the transaction's outcome: fresh is whether its last
// attempt ran the work (and so decided on the lease).
func (l *heldLease) committed(err error, fresh bool) {
	if l != nil && err == nil && fresh && l.inTx {
		l.dropped = true
	}
}

// release deletes the lease unless a committed transaction did: at once
// while it surely is this delivery's, after checking its holder once it
// might not be, or when a transaction that would have deleted it failed
// with its outcome unknown (the lease may be gone and taken anew).
func (l *heldLease) release(ctx context.Context) {
	if l.dropped {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	if l.surely() && !l.attempted {
		err = l.journal.DeleteLease(ctx, l.name)
	} else {
		err = l.journal.ReleaseLease(ctx, l.name, l.holder)
	}
	if err != nil {
		logging.FromContext(ctx).WarnContext(ctx, "lease not released; it expires by itself", "key", l.key, "error", err.Error())
	}
}

// now is the processor's clock: time.Now unless a test set another.
func (p *Processor) now() time.Time {
	if p.clock != nil {
		return p.clock()
	}
	return time.Now()
}

// effect runs w's outside call, within the lease's budget when it holds one.
func (p *Processor) effect(ctx context.Context, w Work) (func(context.Context, store.Tx) ([]Outgoing, error), error) {
	if w.Serialize == "" {
		return w.effect(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, effectBudget)
	defer cancel()
	return w.effect(ctx)
}
