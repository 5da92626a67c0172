package consumer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/logging"
)

// Leases is the collection of per-key leases (see Work.Serialize), and
// Versions the newest version attempted per key (see Work.Version).
const (
	Leases   = "consumer_leases"
	Versions = "consumer_versions"
)

// leaseTTL bounds how long a crashed holder blocks the subscription's next
// delivery; effectBudget, shorter, bounds the outside calls made under the
// lease, so they cannot outlive it and overlap the next holder's.
const (
	leaseTTL     = 20 * time.Second
	effectBudget = 15 * time.Second
)

// ErrBusy says another delivery holds the lease: transient, Pub/Sub
// redelivers after a backoff, by when the holder has committed.
var ErrBusy = errors.New("another delivery for the same key is in flight")

type leaseRecord struct {
	Holder    string    `firestore:"holder"`
	ExpiresAt time.Time `firestore:"expires_at"`
}

// leaseWait is how long a delivery waits for a lease held by a working
// delivery (they hold it for milliseconds) before it gives up as busy.
const leaseWait = 3 * time.Second

// lease takes the lease on key for this delivery alone (two deliveries of
// the same event must not overlap either) and returns its release. It waits
// up to leaseWait for the current holder before answering ErrBusy.
//
// Taking it is a create-if-absent, which the server checks, rather than a
// read-then-write transaction on an absent document: the Firestore emulator
// was seen letting two deliveries hold one lease that way.
func (p *Processor) lease(ctx context.Context, key string) (release func(), err error) {
	ref := p.Store.Doc(Leases, p.Name+"_"+key)
	holder := rand.Text()
	deadline := time.Now().Add(leaseWait)
	for {
		err = p.tryLease(ctx, ref, holder)
		if err == nil {
			return p.releaser(ctx, ref, key, holder), nil
		}
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			return nil, fmt.Errorf("consumer.lease %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25*time.Millisecond + time.Duration(mrand.IntN(50))*time.Millisecond):
		}
	}
}

// tryLease creates the lease document, or removes an expired one (left by
// a crashed holder) so that the next try can.
func (p *Processor) tryLease(ctx context.Context, ref *firestore.DocumentRef, holder string) error {
	_, err := ref.Create(ctx, leaseRecord{Holder: holder, ExpiresAt: time.Now().Add(leaseTTL)})
	if status.Code(err) != codes.AlreadyExists {
		return err
	}
	var cur leaseRecord
	switch err := p.Store.Get(ctx, nil, ref, &cur); {
	case store.IsNotFound(err):
		return ErrBusy // released meanwhile: try again
	case err != nil:
		return err
	case time.Now().Before(cur.ExpiresAt):
		return ErrBusy
	}
	if err := p.deleteIfHeldBy(ctx, ref, cur.Holder); err != nil {
		return err
	}
	return ErrBusy
}

// deleteIfHeldBy removes the lease if holder still has it.
func (p *Processor) deleteIfHeldBy(ctx context.Context, ref *firestore.DocumentRef, holder string) error {
	return p.Store.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var cur leaseRecord
		if err := p.Store.Get(ctx, tx, ref, &cur); err != nil || cur.Holder != holder {
			return nil
		}
		return tx.Delete(ref)
	})
}

// releaser deletes the lease if this delivery still holds it.
func (p *Processor) releaser(ctx context.Context, ref *firestore.DocumentRef, key, holder string) func() {
	return func() {
		ctx := context.WithoutCancel(ctx)
		if err := p.deleteIfHeldBy(ctx, ref, holder); err != nil {
			logging.FromContext(ctx).WarnContext(ctx, "lease not released; it expires by itself", "key", key, "error", err.Error())
		}
	}
}

// effect runs w.Effect, within the lease's budget when it holds one.
func (p *Processor) effect(ctx context.Context, w Work) error {
	if w.Serialize == "" {
		return w.Effect(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, effectBudget)
	defer cancel()
	return w.Effect(ctx)
}

type versionRecord struct {
	Version int64 `firestore:"version"`
}

// claimVersion, under the key's lease, reports whether a newer version than
// v was already attempted, and otherwise records v as attempted.
func (p *Processor) claimVersion(ctx context.Context, key string, v int64) (superseded bool, err error) {
	if v <= 0 {
		return false, nil
	}
	ref := p.Store.Doc(Versions, p.Name+"_"+key)
	var cur versionRecord
	if err := p.Store.Get(ctx, nil, ref, &cur); err != nil && !store.IsNotFound(err) {
		return false, fmt.Errorf("consumer.claimVersion: %w", err)
	}
	if cur.Version > v {
		return true, nil
	}
	if cur.Version == v {
		return false, nil
	}
	if _, err := ref.Set(ctx, versionRecord{Version: v}); err != nil {
		return false, fmt.Errorf("consumer.claimVersion: %w", err)
	}
	return false, nil
}
