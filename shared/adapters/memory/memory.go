// Package memory is the in-memory docstore adapter, for tests of the
// business that must run in milliseconds. It keeps the Firestore adapter's
// semantics (see shared/adapters/docstore): each transaction reads one
// snapshot (multi-version: a read sees the newest version committed before
// the transaction began), commits only if nothing it read changed since
// (else the callback runs again), refuses reads after writes, and Create
// fails on an existing document. Values are stored encoded by their
// `firestore` tags, so a reader never shares memory with a writer, and times
// keep Firestore's microsecond precision.
package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	jsoniter "github.com/json-iterator/go"

	"fulfillment/shared/adapters/docstore"
)

// maxAttempts bounds the retries of a conflicting transaction. Firestore's
// client gives up after 5; in memory nothing blocks, so contention shows as
// conflicts instead of lock waits, and more attempts keep tests from failing
// where Firestore would have made them wait.
const maxAttempts = 100

// ErrConflict is returned when a transaction kept conflicting past maxAttempts.
var ErrConflict = errors.New("memory: transaction aborted: too much contention")

// DB is an in-memory document store. The zero value is not usable: New.
type DB struct {
	mu     sync.Mutex
	seq    uint64                          // the last commit's sequence number
	colls  map[string]map[string][]version // collection -> id -> versions, oldest first
	active map[*tx]struct{}                // open transactions, for pruning old versions

	// RerunFirstAttempt, when set, aborts every transaction's first attempt
	// after its callback returned, so it runs again: a test that passes with
	// it shows its callbacks are safe to repeat, as Firestore requires.
	RerunFirstAttempt bool
}

type version struct {
	seq     uint64
	data    []byte // nil: deleted
	created bool   // this version created the document
	// fields is data decoded for queries, on the first query that reads
	// this version (a version never changes, so once is enough); shared by
	// every row that query returns, read only.
	fields map[string]any
}

// New returns an empty store.
func New() *DB {
	return &DB{colls: map[string]map[string][]version{}, active: map[*tx]struct{}{}}
}

// Close does nothing: memory is freed with the DB.
func (db *DB) Close() error { return nil }

// latest is the newest version of collection/id visible at snapshot (0: now).
func (db *DB) visible(collection, id string, snapshot uint64) ([]byte, bool) {
	vs := db.colls[collection][id]
	for i := len(vs) - 1; i >= 0; i-- {
		if snapshot == 0 || vs[i].seq <= snapshot {
			return vs[i].data, vs[i].data != nil
		}
	}
	return nil, false
}

// lastChange is the sequence number of collection/id's newest version.
func (db *DB) lastChange(collection, id string) uint64 {
	vs := db.colls[collection][id]
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1].seq
}

// Get reads the newest committed version.
func (db *DB) Get(_ context.Context, collection, id string, v any) error {
	db.mu.Lock()
	data, ok := db.visible(collection, id, 0)
	db.mu.Unlock()
	if !ok {
		return fmt.Errorf("memory.Get %s/%s: %w", collection, id, docstore.ErrNotFound)
	}
	return decode(data, v)
}

// GetAll reads every document at one instant, as one request does.
func (db *DB) GetAll(ctx context.Context, reads []*docstore.Read) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	found := make([][]byte, len(reads))
	for i, r := range reads {
		found[i], r.Found = db.visible(r.Collection, r.ID, 0)
	}
	db.mu.Unlock()
	for i, r := range reads {
		if r.Found {
			if err := decode(found[i], r.Into); err != nil {
				return err
			}
		}
	}
	return nil
}

// Create writes v if the document does not exist.
func (db *DB) Create(ctx context.Context, collection, id string, v any) error {
	return db.RunTx(ctx, func(_ context.Context, t docstore.Tx) error { return t.Create(collection, id, v) })
}

// Set writes v.
func (db *DB) Set(ctx context.Context, collection, id string, v any) error {
	return db.RunTx(ctx, func(_ context.Context, t docstore.Tx) error { return t.Set(collection, id, v) })
}

// Delete removes the document.
func (db *DB) Delete(ctx context.Context, collection, id string) error {
	return db.RunTx(ctx, func(_ context.Context, t docstore.Tx) error { return t.Delete(collection, id) })
}

// DeleteIf deletes the document read unless a write landed since: one
// attempt of a transaction, its conflict meaning "changed". match runs
// unlocked, as it runs between two calls on Firestore.
func (db *DB) DeleteIf(_ context.Context, collection, id string, v any, match func() bool) (bool, error) {
	t := db.begin()
	if err := t.Get(collection, id, v); err != nil || !match() {
		db.end(t)
		if docstore.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	_ = t.Delete(collection, id)
	switch err := db.commit(t); {
	case errors.Is(err, errConflict):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// RunTx runs fn until it commits without conflict.
func (db *DB) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := db.begin()
		err := fn(ctx, t)
		if err == nil && attempt == 1 && db.RerunFirstAttempt {
			err = errRerun
		}
		if err == nil {
			err = db.commit(t)
		} else {
			db.end(t)
		}
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, errConflict) && !errors.Is(err, errRerun):
			return err
		case attempt >= maxAttempts:
			return fmt.Errorf("memory.RunTx: %w", ErrConflict)
		}
		if errors.Is(err, errConflict) {
			time.Sleep(time.Duration(rand.IntN(200*min(attempt, 10))) * time.Microsecond)
		}
	}
}

var (
	errConflict = errors.New("memory: conflict")
	errRerun    = errors.New("memory: first attempt rerun")
)

type op struct {
	kind       opKind
	collection string
	id         string
	data       []byte
}

type opKind int

const (
	opCreate opKind = iota
	opSet
	opDelete
)

type tx struct {
	db       *DB
	snapshot uint64
	reads    map[[2]string]struct{}
	writes   []op
	err      error // an encoding error met by a write, returned at commit
}

func (db *DB) begin() *tx {
	db.mu.Lock()
	defer db.mu.Unlock()
	t := &tx{db: db, snapshot: db.seq, reads: map[[2]string]struct{}{}}
	db.active[t] = struct{}{}
	return t
}

func (db *DB) end(t *tx) {
	db.mu.Lock()
	defer db.mu.Unlock()
	delete(db.active, t)
}

func (t *tx) Get(collection, id string, v any) error {
	if len(t.writes) > 0 {
		return docstore.ErrReadAfterWrite
	}
	t.db.mu.Lock()
	data, ok := t.db.visible(collection, id, t.snapshot)
	t.db.mu.Unlock()
	t.reads[[2]string{collection, id}] = struct{}{}
	if !ok {
		return fmt.Errorf("memory.Get %s/%s: %w", collection, id, docstore.ErrNotFound)
	}
	return decode(data, v)
}

// Prefetch only marks the reads: every read of t sees its snapshot, so a
// later Get reads what Prefetch would have.
func (t *tx) Prefetch(keys ...docstore.Key) error {
	if len(t.writes) > 0 {
		return docstore.ErrReadAfterWrite
	}
	for _, k := range keys {
		t.reads[[2]string{k.Collection, k.ID}] = struct{}{}
	}
	return nil
}

func (t *tx) write(kind opKind, collection, id string, v any) error {
	if collection == "" || id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("memory: invalid document path %q/%q", collection, id)
	}
	o := op{kind: kind, collection: collection, id: id}
	if kind != opDelete {
		data, err := encode(v)
		if err != nil {
			return err
		}
		o.data = data
	}
	t.writes = append(t.writes, o)
	return nil
}

func (t *tx) Create(collection, id string, v any) error { return t.write(opCreate, collection, id, v) }
func (t *tx) Set(collection, id string, v any) error    { return t.write(opSet, collection, id, v) }
func (t *tx) Delete(collection, id string) error        { return t.write(opDelete, collection, id, nil) }

// commit applies t's writes if nothing t read changed after its snapshot.
func (db *DB) commit(t *tx) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	delete(db.active, t)
	for k := range t.reads {
		if db.lastChange(k[0], k[1]) > t.snapshot {
			return errConflict
		}
	}
	for _, o := range t.writes {
		if _, exists := db.visible(o.collection, o.id, 0); o.kind == opCreate && exists {
			return fmt.Errorf("memory.Create %s/%s: %w", o.collection, o.id, docstore.ErrAlreadyExists)
		}
	}
	if len(t.writes) == 0 {
		return nil
	}
	db.seq++
	for _, o := range t.writes {
		coll := db.colls[o.collection]
		if coll == nil {
			coll = map[string][]version{}
			db.colls[o.collection] = coll
		}
		vs := coll[o.id]
		if n := len(vs); n > 0 && vs[n-1].seq == db.seq {
			vs = vs[:n-1] // a later write of the same commit replaces an earlier one
		}
		coll[o.id] = db.prune(append(vs, version{seq: db.seq, data: o.data, created: o.kind == opCreate}))
		if o.data == nil && len(coll[o.id]) == 1 {
			delete(coll, o.id)
		}
	}
	return nil
}

// prune drops versions no open transaction can see any more.
func (db *DB) prune(vs []version) []version {
	oldest := db.seq
	for t := range db.active {
		oldest = min(oldest, t.snapshot)
	}
	keep := 0
	for i := range vs {
		if vs[i].seq <= oldest {
			keep = i
		}
	}
	return vs[keep:]
}

// Query scans the collection's newest versions.
func (db *DB) Query(_ context.Context, q docstore.Query) ([]docstore.Doc, error) {
	rows, err := db.selectRows(q)
	if err != nil {
		return nil, err
	}
	if err := sortRows(rows, q.OrderBy); err != nil {
		return nil, err
	}
	if len(q.StartAfter) > 0 {
		if len(q.StartAfter) != len(q.OrderBy) {
			return nil, fmt.Errorf("memory.Query: cursor of %d values for %d orderings", len(q.StartAfter), len(q.OrderBy))
		}
		i := sort.Search(len(rows), func(i int) bool { return compareCursor(rows[i], q.OrderBy, q.StartAfter) > 0 })
		rows = rows[i:]
	}
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	docs := make([]docstore.Doc, len(rows))
	for i, r := range rows {
		data := r.data
		docs[i] = docstore.NewDoc(r.id, func(v any) error { return decode(data, v) })
	}
	return docs, nil
}

// Count counts what Query would select without its limit.
func (db *DB) Count(_ context.Context, q docstore.Query) (int64, error) {
	rows, err := db.selectRows(q)
	return int64(len(rows)), err
}

func (db *DB) selectRows(q docstore.Query) ([]row, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	var rows []row
	for id, vs := range db.colls[q.Collection] {
		v := &vs[len(vs)-1] // the newest: a query reads the latest commit
		if v.data == nil {
			continue
		}
		if v.fields == nil {
			fields, err := decodeFields(id, v.data)
			if err != nil {
				return nil, err
			}
			v.fields = fields
		}
		r := row{id: id, data: v.data, fields: v.fields}
		if r.matches(q.Where) && r.hasAll(q.OrderBy) {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// Increment adds n to field of the newest version in one commit, under the
// store's lock: concurrent increments lose none, and a transaction that
// read the document conflicts with it.
func (db *DB) Increment(ctx context.Context, collection, id, field string, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	data, ok := db.visible(collection, id, 0)
	if !ok {
		return fmt.Errorf("memory.Increment %s/%s: %w", collection, id, docstore.ErrNotFound)
	}
	data, err := incremented(data, field, n)
	if err != nil {
		return fmt.Errorf("memory.Increment %s/%s: %w", collection, id, err)
	}
	db.seq++
	coll := db.colls[collection]
	coll[id] = db.prune(append(coll[id], version{seq: db.seq, data: data}))
	return nil
}

// numbers decodes integers exactly, for Increment.
var numbers = jsoniter.Config{TagKey: "firestore", SortMapKeys: true, UseNumber: true}.Froze()

// incremented is data with n added to the number at the dotted path field;
// a missing or non-numeric field becomes n, as Firestore's transform does.
func incremented(data []byte, field string, n int64) ([]byte, error) {
	var doc map[string]any
	if err := numbers.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	parts := strings.Split(field, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := parts[len(parts)-1]
	cur, _ := m[last].(json.Number)
	if i, err := cur.Int64(); err == nil {
		m[last] = i + n
	} else if f, err := cur.Float64(); err == nil && cur != "" {
		m[last] = f + float64(n)
	} else {
		m[last] = n
	}
	return numbers.Marshal(doc)
}
