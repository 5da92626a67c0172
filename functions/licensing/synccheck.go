package licensing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
)

const day = 24 * time.Hour

// CheckResult is what one strict-sync check did.
type CheckResult struct {
	Checked     int      `json:"checked"`
	Overdue     []string `json:"overdue"`     // subscriptions announced overdue now
	GraceEnded  []string `json:"grace_ended"` // subscriptions whose auto-renewal was turned off now
	Unavailable []string `json:"unavailable"` // not checked this time (storage); the next check retries
}

// serveSyncCheck answers POST /tasks/sync-check (Cloud Scheduler, daily;
// the endpoint is private like the other tasks of the stack).
func (f *Function) serveSyncCheck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
	res, err := f.CheckSync(r.Context())
	if err != nil {
		f.d.Logger.ErrorContext(r.Context(), "sync check failed", "error", err.Error())
		reply(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable"})
		return
	}
	reply(w, http.StatusOK, res)
}

// CheckSync is strict cloud licensing: every activated, not offline,
// instance silent for OverdueDays is announced once per silence
// (license.sync_overdue); one still silent GraceDays after that has its
// subscription's auto-renewal turned off (a set_auto_renew command to
// renewal), so its license is not renewed at the next term. A sync ends the
// silence; the next one starts its own count.
func (f *Function) CheckSync(ctx context.Context) (CheckResult, error) {
	now := f.d.Clock.Now()
	all, err := f.d.Store.CloudLicensesActivated(ctx)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Overdue: []string{}, GraceEnded: []string{}, Unavailable: []string{}}
	overdue := time.Duration(f.d.Policy.OverdueDays) * day
	grace := time.Duration(f.d.Policy.GraceDays) * day
	for _, cl := range all {
		if cl.Offline || cl.LastSyncAt.IsZero() {
			continue
		}
		res.Checked++
		silent := now.Sub(cl.LastSyncAt)
		if silent >= overdue && !cl.OverdueFor.Equal(cl.LastSyncAt) {
			if err := f.announceOverdue(ctx, cl, now, overdue, grace); err != nil {
				f.d.Logger.ErrorContext(ctx, "overdue not announced", "subscription_id", cl.SubscriptionID, "error", err.Error())
				res.Unavailable = append(res.Unavailable, cl.SubscriptionID)
				continue
			}
			res.Overdue = append(res.Overdue, cl.SubscriptionID)
		}
		if silent >= overdue+grace && !cl.GraceActedFor.Equal(cl.LastSyncAt) {
			if err := f.endGrace(ctx, cl); err != nil {
				f.d.Logger.ErrorContext(ctx, "grace end not applied", "subscription_id", cl.SubscriptionID, "error", err.Error())
				res.Unavailable = append(res.Unavailable, cl.SubscriptionID)
				continue
			}
			res.GraceEnded = append(res.GraceEnded, cl.SubscriptionID)
		}
	}
	return res, nil
}

// silence names one silence of an instance: its last sync.
func silence(cl store.CloudLicense) string {
	return fmt.Sprintf("%s_%d", cl.SubscriptionID, cl.LastSyncAt.UnixNano())
}

func (f *Function) announceOverdue(ctx context.Context, seen store.CloudLicense, now time.Time, overdue, grace time.Duration) error {
	return f.announce(ctx, "sync-overdue_"+silence(seen), seen.SubscriptionID, func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		sub, err := f.d.Store.Subscription(ctx, tx, seen.SubscriptionID)
		if err != nil {
			return nil, err
		}
		cl, _, err := f.d.Store.CloudLicense(ctx, tx, seen.SubscriptionID)
		if err != nil {
			return nil, err
		}
		if !cl.LastSyncAt.Equal(seen.LastSyncAt) {
			return nil, nil // it synced meanwhile
		}
		cl.OverdueFor = cl.LastSyncAt
		if err := f.d.Store.SaveCloudLicense(tx, cl); err != nil {
			return nil, err
		}
		e, err := cloudevent.New(ctx, "license-sync-overdue_"+silence(cl), catalog.SourceLicensing, catalog.LicenseOverdue, cl.SubscriptionID,
			catalog.LicenseSyncOverdue{
				SubscriptionID: cl.SubscriptionID, InstanceID: cl.InstanceID, LastSyncAt: cl.LastSyncAt,
				DaysSinceSync: int(now.Sub(cl.LastSyncAt) / day), GraceEndsAt: cl.LastSyncAt.Add(overdue + grace), Customer: sub.Customer,
			})
		if err != nil {
			return nil, err
		}
		return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: e}}, nil
	})
}

// endGrace asks renewal to turn auto-renewal off: the command's id names
// this silence, so renewal applies it once.
func (f *Function) endGrace(ctx context.Context, seen store.CloudLicense) error {
	return f.announce(ctx, "sync-grace_"+silence(seen), seen.SubscriptionID, func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		sub, err := f.d.Store.Subscription(ctx, tx, seen.SubscriptionID)
		if err != nil {
			return nil, err
		}
		cl, _, err := f.d.Store.CloudLicense(ctx, tx, seen.SubscriptionID)
		if err != nil {
			return nil, err
		}
		if !cl.LastSyncAt.Equal(seen.LastSyncAt) {
			return nil, nil
		}
		cl.GraceActedFor = cl.LastSyncAt
		if err := f.d.Store.SaveCloudLicense(tx, cl); err != nil {
			return nil, err
		}
		if !sub.Order.AutoRenew || !running(sub.Status) {
			return nil, nil
		}
		e, err := cloudevent.New(ctx, "license-sync-grace_"+silence(cl), catalog.SourceLicensing, catalog.CommandSetAutoRenew, cl.SubscriptionID,
			catalog.Command{SubscriptionID: cl.SubscriptionID, AutoRenew: false})
		if err != nil {
			return nil, err
		}
		e.SetTime(f.d.Clock.Now())
		return []consumer.Outgoing{{Topic: catalog.TopicRenewalTicks, Event: e}}, nil
	})
}
