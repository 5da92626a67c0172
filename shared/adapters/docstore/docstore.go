// Package docstore is the storage port every repository is written against:
// a transactional document store with Firestore's semantics. Two adapters
// implement it: shared/adapters/firestore (production, the emulator locally)
// and shared/adapters/memory (fast tests), and one contract suite
// (shared/testsupport/docstoretest) holds both to the same semantics:
//
//   - RunTx's callback may run more than once: conflicting transactions are
//     retried, so a callback does nothing outside the transaction;
//   - reads inside a transaction see one snapshot, and a read after a write
//     in the same transaction is refused, as Firestore refuses it;
//   - Create fails with ErrAlreadyExists on an existing document;
//   - a transaction whose callback fails leaves nothing behind;
//   - Increment adds to a field atomically, without a read or a
//     transaction, so concurrent increments lose none.
//
// Documents are Go values encoded by their `firestore` struct tags.
// Collections are slash paths: "subscriptions" or "subscriptions/s1/history".
package docstore

import (
	"context"
	"errors"
)

// ErrNotFound says a document does not exist.
var ErrNotFound = errors.New("docstore: not found")

// ErrAlreadyExists says Create met an existing document.
var ErrAlreadyExists = errors.New("docstore: already exists")

// ErrReadAfterWrite says a transaction read after it wrote.
var ErrReadAfterWrite = errors.New("docstore: read after write in a transaction")

// IsNotFound reports whether err says a document does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err says Create met an existing document.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// Read is one document of a GetAll.
type Read struct {
	Collection, ID string
	Into           any  // decoded into when the document exists
	Found          bool // set by GetAll
}

// Key names one document.
type Key struct{ Collection, ID string }

// DB is a document store.
type DB interface {
	// Get reads collection/id into v; ErrNotFound when absent.
	Get(ctx context.Context, collection, id string, v any) error
	// GetAll reads every document of reads in one request, outside any
	// transaction: each that exists into its Into, with Found set; an
	// absent one is no error.
	GetAll(ctx context.Context, reads []*Read) error
	// Create writes v unless the document exists (ErrAlreadyExists).
	Create(ctx context.Context, collection, id string, v any) error
	// Set writes v, replacing the document.
	Set(ctx context.Context, collection, id string, v any) error
	// Delete removes the document; deleting an absent one is no error.
	Delete(ctx context.Context, collection, id string) error
	// DeleteIf reads the document into v and deletes it if match() says so
	// and it is unchanged since that read: a precondition, not a
	// transaction, so no lock is held (a process killed midway leaves none
	// behind). deleted is false when absent, unmatched or changed meanwhile.
	DeleteIf(ctx context.Context, collection, id string, v any, match func() bool) (deleted bool, err error)
	// RunTx runs fn in a transaction and commits its writes. fn may run
	// more than once; its error aborts the transaction and is returned.
	RunTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Query lists the documents q selects, in its order.
	Query(ctx context.Context, q Query) ([]Doc, error)
	// Count counts the documents q selects (its order and limit ignored).
	Count(ctx context.Context, q Query) (int64, error)
	Close() error
	// Increment adds n to the integer field (a dotted path of firestore
	// names) of an existing document in one write, no read: concurrent
	// increments lose none. A missing or non-integer field becomes n, as
	// Firestore's increment transform does; ErrNotFound when the document
	// is absent.
	Increment(ctx context.Context, collection, id, field string, n int64) error
}

// Tx is one attempt of a transaction. Reads come before writes; writes are
// applied at commit, all or none.
type Tx interface {
	Get(collection, id string, v any) error
	// Prefetch reads the documents of keys in one request: later Gets of
	// them in this attempt are answered from it, with what a Get would have
	// read then (the transaction's reads see one state). A read like any
	// other, it must come before the first write.
	Prefetch(keys ...Key) error
	Create(collection, id string, v any) error
	Set(collection, id string, v any) error
	Delete(collection, id string) error
}

// Get reads collection/id inside tx, or directly when tx is nil.
func Get(ctx context.Context, db DB, tx Tx, collection, id string, v any) error {
	if tx != nil {
		return tx.Get(collection, id, v)
	}
	return db.Get(ctx, collection, id, v)
}

// DocumentID orders or filters by the document's id.
const DocumentID = "__name__"

// Op is a filter's comparison.
type Op string

// The comparisons both adapters support.
const (
	Eq Op = "=="
	Lt Op = "<"
	Le Op = "<="
	Gt Op = ">"
	Ge Op = ">="
)

// Filter selects documents whose Field (a dotted path) compares with Value.
// Like Firestore, a document whose field is missing or of another type than
// Value is not selected.
type Filter struct {
	Field string
	Op    Op
	Value any
}

// Query selects documents of one collection: every filter holds, ordered
// ascending by OrderBy (field paths or DocumentID), after the StartAfter
// cursor (one value per OrderBy field), at most Limit (0: all).
type Query struct {
	Collection string
	Where      []Filter
	OrderBy    []string
	StartAfter []any
	Limit      int
	// Select, when set, reads only these fields (a projection).
	Select []string
}

// Doc is one document a query returned.
type Doc struct {
	ID     string
	decode func(v any) error
}

// NewDoc is for adapters: a document and how to decode it.
func NewDoc(id string, decode func(v any) error) Doc { return Doc{ID: id, decode: decode} }

// DataTo decodes the document into v.
func (d Doc) DataTo(v any) error { return d.decode(v) }
