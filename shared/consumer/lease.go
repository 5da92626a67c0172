package consumer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"cloud.google.com/go/firestore"

	"fulfillment/shared/logging"
	"fulfillment/shared/store"
)

// Leases is the collection of per-key leases (see Work.Serialize).
const Leases = "consumer_leases"

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
func (p *Processor) lease(ctx context.Context, key string) (release func(), err error) {
	ref := p.Store.Doc(Leases, p.Name+"_"+key)
	holder := rand.Text()
	deadline := time.Now().Add(leaseWait)
	for {
		err = p.tryLease(ctx, ref, holder)
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25*time.Millisecond + time.Duration(mrand.IntN(50))*time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer.lease %s: %w", key, err)
	}
	return p.releaser(ctx, ref, key, holder), nil
}

func (p *Processor) tryLease(ctx context.Context, ref *firestore.DocumentRef, holder string) error {
	return p.Store.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var cur leaseRecord
		switch err := p.Store.Get(ctx, tx, ref, &cur); {
		case err == nil && cur.Holder != holder && time.Now().Before(cur.ExpiresAt):
			return ErrBusy
		case err != nil && !store.IsNotFound(err):
			return err
		}
		return tx.Set(ref, leaseRecord{Holder: holder, ExpiresAt: time.Now().Add(leaseTTL)})
	})
}

func (p *Processor) releaser(ctx context.Context, ref *firestore.DocumentRef, key, holder string) func() {
	return func() {
		// Release only our own lease: past its expiry another may hold it.
		err := p.Store.Client.RunTransaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *firestore.Transaction) error {
			var cur leaseRecord
			if err := p.Store.Get(ctx, tx, ref, &cur); err != nil || cur.Holder != holder {
				return nil
			}
			return tx.Delete(ref)
		})
		if err != nil {
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
