// Package deadletter is the operator's side of dead letters: list them per
// subscription (consumer) with the reason, show one, and replay one or all.
// A replay publishes the recorded event again on the consumer's topic after
// clearing the consumer's dedupe record and attempt count for it, so the
// consumer does the work afresh; the other consumers of the topic dedupe it.
// The dead letter is removed; a replay that fails again is recorded again.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/infra/topology"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
)

// Record is a dead letter and its document id.
type Record struct {
	ID string `json:"id"`
	consumer.DeadLetter
}

// List returns the dead letters of one consumer ("" for all), oldest first.
func List(ctx context.Context, st *store.Store, consumerName string) ([]Record, error) {
	q := docstore.Query{Collection: store.DeadLetters}
	if consumerName != "" {
		q.Where = []docstore.Filter{{Field: "consumer", Op: docstore.Eq, Value: consumerName}}
	}
	byID, err := store.ByID[consumer.DeadLetter](ctx, st, q)
	if err != nil {
		return nil, fmt.Errorf("deadletter.List: %w", err)
	}
	out := make([]Record, 0, len(byID))
	for id, dl := range byID {
		out = append(out, Record{ID: id, DeadLetter: dl})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Consumer != out[j].Consumer {
			return out[i].Consumer < out[j].Consumer
		}
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get reads one dead letter by its id (as List shows it).
func Get(ctx context.Context, st *store.Store, id string) (Record, error) {
	var dl consumer.DeadLetter
	if err := st.Get(ctx, nil, store.DeadLetters, id, &dl); err != nil {
		return Record{}, fmt.Errorf("deadletter.Get: %w", err)
	}
	return Record{ID: id, DeadLetter: dl}, nil
}

// Event decodes the recorded event.
func (r Record) Event() (event.Event, error) {
	var e event.Event
	if err := json.Unmarshal([]byte(r.DeadLetter.Event), &e); err != nil {
		return e, fmt.Errorf("deadletter: record %s holds no decodable event: %w", r.ID, err)
	}
	return e, nil
}

// Replay sends the dead letter's event to its consumer again.
func Replay(ctx context.Context, st *store.Store, pub pubsub.Publisher, top topology.Topology, r Record) error {
	fn, ok := top.Functions[r.Consumer]
	if !ok || fn.Topic == "" {
		return fmt.Errorf("deadletter.Replay %s: consumer %q has no topic in the topology", r.ID, r.Consumer)
	}
	e, err := r.Event()
	if err != nil {
		return err
	}
	key := r.Consumer + "_" + cloudevent.Key(e)
	for _, coll := range []string{store.Processed, consumer.Attempts} {
		if err := st.DB.Delete(ctx, coll, key); err != nil {
			return fmt.Errorf("deadletter.Replay %s: clear %s: %w", r.ID, coll, err)
		}
	}
	if err := pub.Publish(ctx, fn.Topic, e); err != nil {
		return fmt.Errorf("deadletter.Replay %s: publish: %w", r.ID, err)
	}
	if err := st.DB.Delete(ctx, store.DeadLetters, r.ID); err != nil {
		return fmt.Errorf("deadletter.Replay %s: remove record: %w", r.ID, err)
	}
	return nil
}

// ReplayAll replays every record, calling progress after each; it goes on
// past failures and returns them joined.
func ReplayAll(ctx context.Context, st *store.Store, pub pubsub.Publisher, top topology.Topology, recs []Record, progress func()) error {
	var errs []error
	for _, r := range recs {
		if err := Replay(ctx, st, pub, top, r); err != nil {
			errs = append(errs, err)
		}
		if progress != nil {
			progress()
		}
	}
	return errors.Join(errs...)
}

// Summary is one line of a list: the reason cut to width.
func (r Record) Summary(width int) string {
	reason := strings.ReplaceAll(r.Reason, "\n", " ")
	if len(reason) > width {
		reason = reason[:width-1] + "…"
	}
	return reason
}
