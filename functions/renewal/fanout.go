package renewal

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
)

// FanOutOnTick starts a fan-out at the tick's time. A repeated tick
// publishes the same renewal-due events (their ids name the subscription's
// version and review time), which renewal dedupes.
func (f *Function) FanOutOnTick(ctx context.Context, tick event.Event) error {
	return f.fanOut(ctx, catalog.FanOutPage{Tick: tick.ID(), Now: f.d.Clock.Now()})
}

// FanOutOnPage continues a fan-out after the cursor the previous delivery
// reached, so no delivery runs past its acknowledgement deadline.
func (f *Function) FanOutOnPage(ctx context.Context, in event.Event) error {
	var page catalog.FanOutPage
	if err := cloudevent.DecodeData(in, &page); err != nil {
		return err
	}
	return f.fanOut(ctx, page)
}

// fanOut publishes one renewal-due event per subscription due, page by
// page, and hands the rest on in a fan-out page event after PagesPerRun pages.
func (f *Function) fanOut(ctx context.Context, page catalog.FanOutPage) error {
	for range f.d.PagesPerRun {
		dues, err := f.d.Store.DueReviews(ctx, page.Now, page.AfterReview, page.AfterID, f.d.PageSize)
		if err != nil {
			return fmt.Errorf("renewal.fanOut: %w", err)
		}
		if len(dues) == 0 {
			page.AfterID = "" // the previous page was the last
			break
		}
		events := make([]event.Event, 0, len(dues))
		for _, due := range dues {
			e, err := cloudevent.New(ctx, dueID(due), catalog.SourceRenewal, catalog.RenewalDue, due.SubscriptionID, due)
			if err != nil {
				return err
			}
			events = append(events, e)
			page.AfterID, page.AfterReview = due.SubscriptionID, due.ReviewAt
		}
		if err := f.d.FanOut.Publish(ctx, catalog.TopicRenewalTicks, events...); err != nil {
			return err
		}
		page.Events += len(events)
		if len(dues) < f.d.PageSize {
			page.AfterID = ""
			break
		}
	}
	if page.AfterID == "" {
		f.d.Logger.InfoContext(ctx, "renewal fan-out done", "tick", page.Tick, "due", page.Events)
		return nil
	}
	next, err := cloudevent.New(ctx, fmt.Sprintf("%s/after/%s", page.Tick, page.AfterID), catalog.SourceRenewal, catalog.RenewalFanOutPage, page.Tick, page)
	if err != nil {
		return err
	}
	return f.d.Publisher.Publish(ctx, catalog.TopicRenewalTicks, next)
}

// dueID names one review of one subscription: the same state and review
// time always give the same event, so repeated ticks dedupe.
func dueID(d catalog.Due) string {
	return fmt.Sprintf("due/%s/v%d/%s", d.SubscriptionID, d.Version, d.ReviewAt.UTC().Format(time.RFC3339Nano))
}
