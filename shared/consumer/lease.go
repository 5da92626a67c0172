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

	"fulfillment/shared/logging"
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
//
// It relies on preconditions the server checks (create only if absent,
// delete only the version read), not on transaction isolation: the
// Firestore emulator was seen letting two deliveries hold one lease.
func (p *Processor) lease(ctx context.Context, key string) (release func(), err error) {
	ref := p.Store.Doc(Leases, p.Name+"_"+key)
	holder := rand.Text()
	deadline := time.Now().Add(leaseWait)
	for {
		var taken time.Time
		taken, err = p.tryLease(ctx, ref, holder)
		if err == nil {
			return p.releaser(ctx, ref, key, taken), nil
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

// tryLease creates the lease document, or removes an expired one so the
// next try can; it returns the update time of the lease it took.
func (p *Processor) tryLease(ctx context.Context, ref *firestore.DocumentRef, holder string) (time.Time, error) {
	wr, err := ref.Create(ctx, leaseRecord{Holder: holder, ExpiresAt: time.Now().Add(leaseTTL)})
	if err == nil {
		return wr.UpdateTime, nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return time.Time{}, err
	}
	snap, err := ref.Get(ctx)
	switch {
	case status.Code(err) == codes.NotFound:
		return time.Time{}, ErrBusy // released meanwhile: try again
	case err != nil:
		return time.Time{}, err
	}
	var cur leaseRecord
	if err := snap.DataTo(&cur); err != nil {
		return time.Time{}, err
	}
	if time.Now().Before(cur.ExpiresAt) {
		return time.Time{}, ErrBusy
	}
	// Left by a crashed holder: remove exactly that lease; if another
	// delivery took it over first, the precondition fails and we wait.
	_, _ = ref.Delete(ctx, firestore.LastUpdateTime(snap.UpdateTime))
	return time.Time{}, ErrBusy
}

// releaser deletes the lease only if it is still the one this delivery took.
func (p *Processor) releaser(ctx context.Context, ref *firestore.DocumentRef, key string, taken time.Time) func() {
	return func() {
		_, err := ref.Delete(context.WithoutCancel(ctx), firestore.LastUpdateTime(taken))
		if err != nil && status.Code(err) != codes.FailedPrecondition && status.Code(err) != codes.NotFound {
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
