// Package counting wraps the storage and publishing ports to count what a
// handler asks of Firestore and Pub/Sub: the benchmarks report commits and
// publishes per event from it, whichever adapter is underneath.
package counting

import (
	"context"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
)

// DB counts commits: each write outside a transaction is one, and each
// transaction that wrote is one (counted once, however often it re-ran).
type DB struct {
	docstore.DB
	commits atomic.Int64
	reads   atomic.Int64
	queries atomic.Int64
}

// NewDB wraps db.
func NewDB(db docstore.DB) *DB { return &DB{DB: db} }

// Commits is the number of commits so far.
func (d *DB) Commits() int64 { return d.commits.Load() }

// Reads is the number of read requests outside transactions and in them
// (a GetAll is one, whatever it reads).
func (d *DB) Reads() int64 { return d.reads.Load() }

// Queries is the number of queries and counts run.
func (d *DB) Queries() int64 { return d.queries.Load() }

func (d *DB) Query(ctx context.Context, q docstore.Query) ([]docstore.Doc, error) {
	d.queries.Add(1)
	return d.DB.Query(ctx, q)
}

func (d *DB) Count(ctx context.Context, q docstore.Query) (int64, error) {
	d.queries.Add(1)
	return d.DB.Count(ctx, q)
}

func (d *DB) Get(ctx context.Context, collection, id string, v any) error {
	d.reads.Add(1)
	return d.DB.Get(ctx, collection, id, v)
}

// GetAll is one read request, however many documents it reads.
func (d *DB) GetAll(ctx context.Context, reads []*docstore.Read) error {
	d.reads.Add(1)
	return d.DB.GetAll(ctx, reads)
}

func (d *DB) Create(ctx context.Context, collection, id string, v any) error {
	err := d.DB.Create(ctx, collection, id, v)
	d.count(err)
	return err
}

func (d *DB) Set(ctx context.Context, collection, id string, v any) error {
	err := d.DB.Set(ctx, collection, id, v)
	d.count(err)
	return err
}

func (d *DB) Delete(ctx context.Context, collection, id string) error {
	err := d.DB.Delete(ctx, collection, id)
	d.count(err)
	return err
}

func (d *DB) DeleteIf(ctx context.Context, collection, id string, v any, match func() bool) (bool, error) {
	d.reads.Add(1)
	deleted, err := d.DB.DeleteIf(ctx, collection, id, v, match)
	if deleted {
		d.count(err)
	}
	return deleted, err
}

func (d *DB) Increment(ctx context.Context, collection, id, field string, n int64) error {
	err := d.DB.Increment(ctx, collection, id, field, n)
	d.count(err)
	return err
}

func (d *DB) RunTx(ctx context.Context, fn func(ctx context.Context, tx docstore.Tx) error) error {
	var wrote bool
	err := d.DB.RunTx(ctx, func(ctx context.Context, tx docstore.Tx) error {
		t := &countingTx{Tx: tx, reads: &d.reads}
		err := fn(ctx, t)
		wrote = t.wrote
		return err
	})
	if wrote {
		d.count(err)
	}
	return err
}

// count counts a commit; a refused create (already exists) wrote nothing.
func (d *DB) count(err error) {
	if err == nil {
		d.commits.Add(1)
	}
}

type countingTx struct {
	docstore.Tx
	reads   *atomic.Int64
	wrote   bool
	fetched map[docstore.Key]bool // answered by Prefetch's request
}

func (t *countingTx) Get(collection, id string, v any) error {
	if !t.fetched[docstore.Key{Collection: collection, ID: id}] {
		t.reads.Add(1)
	}
	return t.Tx.Get(collection, id, v)
}

// Prefetch is one read request, however many documents it reads.
func (t *countingTx) Prefetch(keys ...docstore.Key) error {
	t.reads.Add(1)
	if t.fetched == nil {
		t.fetched = map[docstore.Key]bool{}
	}
	for _, k := range keys {
		t.fetched[k] = true
	}
	return t.Tx.Prefetch(keys...)
}

func (t *countingTx) Create(collection, id string, v any) error {
	t.wrote = true
	return t.Tx.Create(collection, id, v)
}

func (t *countingTx) Set(collection, id string, v any) error {
	t.wrote = true
	return t.Tx.Set(collection, id, v)
}

func (t *countingTx) Delete(collection, id string) error {
	t.wrote = true
	return t.Tx.Delete(collection, id)
}

// Publisher counts publish calls and messages.
type Publisher struct {
	pubsub.Publisher
	calls, messages atomic.Int64
}

// NewPublisher wraps p.
func NewPublisher(p pubsub.Publisher) *Publisher { return &Publisher{Publisher: p} }

// Messages is the number of messages published so far.
func (p *Publisher) Messages() int64 { return p.messages.Load() }

// Calls is the number of Publish calls so far.
func (p *Publisher) Calls() int64 { return p.calls.Load() }

func (p *Publisher) Publish(ctx context.Context, topic string, events ...event.Event) error {
	err := p.Publisher.Publish(ctx, topic, events...)
	if err == nil {
		p.calls.Add(1)
		p.messages.Add(int64(len(events)))
	}
	return err
}
