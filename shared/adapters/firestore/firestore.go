// Package firestore is the docstore adapter on Cloud Firestore (the
// emulator when FIRESTORE_EMULATOR_HOST is set), with the official client.
package firestore

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"

	fs "cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/grpcconn"
	"fulfillment/shared/adapters/store"
)

// DB is a docstore on one Firestore database.
type DB struct {
	Client *fs.Client
	groups *groups    // nil: every call is its own request (see group.go)
	lazy   *lazyBegin // begins transactions in their first reads (lazybegin.go)
}

// Open connects to the (default) Firestore database of project.
func Open(ctx context.Context, project string) (*DB, error) {
	return OpenIn(ctx, project, fs.DefaultDatabaseID)
}

// OpenIn connects to the Firestore database named database of project; ""
// and "(default)" are the default database.
func OpenIn(ctx context.Context, project, database string) (*DB, error) {
	return openWith(ctx, project, database)
}

// openWith is OpenIn on a connection with extra dial options after the
// adapter's own (a test's request counter).
func openWith(ctx context.Context, project, database string, extra ...grpc.DialOption) (*DB, error) {
	lazy := newLazyBegin()
	opts, emulatorConn, err := clientOptions(append(lazy.DialOptions(), extra...))
	if err != nil {
		return nil, fmt.Errorf("firestore.Open %s/%s: %w", project, database, err)
	}
	var c *fs.Client
	if database == "" || database == fs.DefaultDatabaseID {
		c, err = fs.NewClient(ctx, project, opts...)
	} else {
		c, err = fs.NewClientWithDatabase(ctx, project, database, opts...)
	}
	if err != nil {
		if emulatorConn != nil {
			_ = emulatorConn.Close() // no client took it over
		}
		return nil, fmt.Errorf("firestore.Open %s/%s: %w", project, database, err)
	}
	return &DB{Client: c, groups: newGroups(c), lazy: lazy}, nil
}

// clientOptions are grpcconn's with ours, the adapter's own dial options
// (lazybegin.go) and a test's. On the emulator (FIRESTORE_EMULATOR_HOST)
// the Firestore client dials a connection of its own that takes no dial
// options, so the adapter hands it one dialed with them: the tests and
// make bench then run on the connection production runs on (no flow-control
// pings), not on one that costs a write and a read more per call. The
// client's own connection is left unused; gRPC closes it when it has been
// idle for 30 minutes. The connection is returned too (nil off the
// emulator), for OpenIn to close should no client take it over.
func clientOptions(ours []grpc.DialOption) ([]option.ClientOption, *grpc.ClientConn, error) {
	addr := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if addr == "" {
		return grpcconn.Options(ours...), nil, nil
	}
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	conn, err := grpc.NewClient(addr, append(append(grpcconn.DialOptions(), ours...),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorOwner{}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	)...)
	if err != nil {
		return nil, nil, fmt.Errorf("dialing the emulator at %s: %w", addr, err)
	}
	return []option.ClientOption{option.WithGRPCConn(conn)}, conn, nil
}

// emulatorOwner is what the Firestore client sends the emulator: its admin
// credentials, which skip the security rules.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }

// OpenStore returns the shared repositories on the (default) Firestore
// database of project.
func OpenStore(ctx context.Context, project string) (*store.Store, error) {
	return OpenStoreIn(ctx, project, fs.DefaultDatabaseID)
}

// OpenStoreIn returns the shared repositories on the Firestore database
// named database of project (OpenIn).
func OpenStoreIn(ctx context.Context, project, database string) (*store.Store, error) {
	db, err := OpenIn(ctx, project, database)
	if err != nil {
		return nil, err
	}
	return store.New(db), nil
}

// Close closes the client.
func (db *DB) Close() error { return db.Client.Close() }

func (db *DB) ref(collection, id string) *fs.DocumentRef {
	return db.Client.Collection(collection).Doc(id)
}

// mapErr turns the client's status codes into docstore's errors.
func mapErr(op string, ref *fs.DocumentRef, err error) error {
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound:
		return fmt.Errorf("firestore.%s %s: %w", op, ref.Path, docstore.ErrNotFound)
	case codes.AlreadyExists:
		return fmt.Errorf("firestore.%s %s: %w", op, ref.Path, docstore.ErrAlreadyExists)
	}
	return fmt.Errorf("firestore.%s %s: %w", op, ref.Path, err)
}

func snapTo(op string, snap *fs.DocumentSnapshot, err error, ref *fs.DocumentRef, v any) error {
	if err != nil {
		return mapErr(op, ref, err)
	}
	if err := snap.DataTo(v); err != nil {
		return fmt.Errorf("firestore.%s %s: %w", op, ref.Path, err)
	}
	return nil
}

// Get reads one document, grouped with concurrent reads (group.go).
func (db *DB) Get(ctx context.Context, collection, id string, v any) error {
	ref := db.ref(collection, id)
	if db.groups != nil {
		return db.groupedGet(ctx, ref, v)
	}
	snap, err := ref.Get(ctx)
	return snapTo("Get", snap, err, ref, v)
}

// GetAll reads every document in one BatchGetDocuments, which concurrent
// reads join (group.go).
func (db *DB) GetAll(ctx context.Context, reads []*docstore.Read) error {
	if len(reads) == 0 {
		return nil
	}
	rs := make([]*readReq, len(reads))
	for i, r := range reads {
		rs[i] = &readReq{ref: db.ref(r.Collection, r.ID)}
	}
	if err := db.readAll(ctx, rs); err != nil {
		return err
	}
	for i, r := range reads {
		if r.Found = rs[i].snap.Exists(); r.Found {
			if err := snapTo("GetAll", rs[i].snap, nil, rs[i].ref, r.Into); err != nil {
				return err
			}
		}
	}
	return nil
}

// Create writes v unless the document exists; the server checks it. It is
// grouped with concurrent creates and increments (group.go).
func (db *DB) Create(ctx context.Context, collection, id string, v any) error {
	return db.write(ctx, "Create", &writeReq{kind: writeCreate, ref: db.ref(collection, id), v: v})
}

// Set writes v.
func (db *DB) Set(ctx context.Context, collection, id string, v any) error {
	return db.write(ctx, "Set", &writeReq{kind: writeSet, ref: db.ref(collection, id), v: v})
}

// Delete removes the document.
func (db *DB) Delete(ctx context.Context, collection, id string) error {
	return db.write(ctx, "Delete", &writeReq{kind: writeDelete, ref: db.ref(collection, id)})
}

// DeleteIf deletes the document read unless it changed since: Firestore's
// last-update-time precondition.
func (db *DB) DeleteIf(ctx context.Context, collection, id string, v any, match func() bool) (bool, error) {
	ref := db.ref(collection, id)
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err := snapTo("DeleteIf", snap, err, ref, v); err != nil || !match() {
		return false, err
	}
	_, err = ref.Delete(ctx, fs.LastUpdateTime(snap.UpdateTime))
	if c := status.Code(err); c == codes.FailedPrecondition || c == codes.NotFound {
		return false, nil // changed or gone since the read
	}
	return err == nil, mapErr("DeleteIf", ref, err)
}

// RunTx runs fn in a Firestore transaction (the client retries it on contention).
func (db *DB) RunTx(ctx context.Context, fn func(context.Context, docstore.Tx) error) error {
	err := db.Client.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		return fn(ctx, &tx{db: db, t: t, fetched: map[string]*fs.DocumentSnapshot{}})
	})
	if err != nil && status.Code(err) == codes.AlreadyExists && !docstore.IsAlreadyExists(err) {
		return fmt.Errorf("firestore.RunTx: %w: %w", docstore.ErrAlreadyExists, err)
	}
	return err
}

type tx struct {
	db *DB
	t  *fs.Transaction
	// fetched is what Prefetch read, by path. A document read in a
	// transaction is locked until the commit, so a later Get would read the
	// same.
	fetched map[string]*fs.DocumentSnapshot
	wrote   bool
}

func (t *tx) Get(collection, id string, v any) error {
	ref := t.db.ref(collection, id)
	if snap, ok := t.fetched[ref.Path]; ok {
		if t.wrote { // as the client refuses it
			return docstore.ErrReadAfterWrite
		}
		if !snap.Exists() {
			return fmt.Errorf("firestore.Get %s: %w", ref.Path, docstore.ErrNotFound)
		}
		return snapTo("Get", snap, nil, ref, v)
	}
	snap, err := t.t.Get(ref)
	if err != nil && err.Error() == clientReadAfterWrite {
		return docstore.ErrReadAfterWrite
	}
	return snapTo("Get", snap, err, ref, v)
}

// clientReadAfterWrite is the client's refusal, which it does not export.
const clientReadAfterWrite = "firestore: read after write in transaction"

// Prefetch reads the documents of keys in one BatchGetDocuments.
func (t *tx) Prefetch(keys ...docstore.Key) error {
	if t.wrote {
		return docstore.ErrReadAfterWrite
	}
	var refs []*fs.DocumentRef
	seen := map[string]bool{}
	for _, k := range keys {
		if k.ID == "" {
			continue // names no document: left to Get, which refuses it
		}
		ref := t.db.ref(k.Collection, k.ID)
		if _, done := t.fetched[ref.Path]; !done && !seen[ref.Path] {
			seen[ref.Path] = true
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	snaps, err := t.t.GetAll(refs)
	if err != nil {
		return fmt.Errorf("firestore.Prefetch: %w", err)
	}
	for i, snap := range snaps {
		t.fetched[refs[i].Path] = snap
	}
	return nil
}

func (t *tx) Create(collection, id string, v any) error {
	ref := t.db.ref(collection, id)
	t.wrote = true
	return mapErr("Create", ref, t.t.Create(ref, v))
}

func (t *tx) Set(collection, id string, v any) error {
	ref := t.db.ref(collection, id)
	t.wrote = true
	return mapErr("Set", ref, t.t.Set(ref, v))
}

func (t *tx) Delete(collection, id string) error {
	ref := t.db.ref(collection, id)
	t.wrote = true
	return mapErr("Delete", ref, t.t.Delete(ref))
}

func (db *DB) query(q docstore.Query) fs.Query {
	fq := db.Client.Collection(q.Collection).Query
	for _, f := range q.Where {
		fq = fq.Where(f.Field, string(f.Op), f.Value)
	}
	for _, o := range q.OrderBy {
		if o == docstore.DocumentID {
			fq = fq.OrderBy(fs.DocumentID, fs.Asc)
			continue
		}
		fq = fq.OrderBy(o, fs.Asc)
	}
	if len(q.StartAfter) > 0 {
		fq = fq.StartAfter(q.StartAfter...)
	}
	if q.Limit > 0 {
		fq = fq.Limit(q.Limit)
	}
	if len(q.Select) > 0 {
		fq = fq.Select(q.Select...)
	}
	return fq
}

// Query runs q.
func (db *DB) Query(ctx context.Context, q docstore.Query) ([]docstore.Doc, error) {
	snaps, err := db.query(q).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestore.Query %s: %w", q.Collection, err)
	}
	docs := make([]docstore.Doc, len(snaps))
	for i, s := range snaps {
		docs[i] = docstore.NewDoc(s.Ref.ID, s.DataTo)
	}
	return docs, nil
}

// Count runs q as a count aggregation.
func (db *DB) Count(ctx context.Context, q docstore.Query) (int64, error) {
	q.OrderBy, q.StartAfter, q.Limit, q.Select = nil, nil, 0, nil
	fq := db.query(q)
	res, err := fq.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("firestore.Count %s: %w", q.Collection, err)
	}
	switch n := res["n"].(type) {
	case int64:
		return n, nil
	case *firestorepb.Value:
		return n.GetIntegerValue(), nil
	}
	return 0, fmt.Errorf("firestore.Count %s: unexpected result %T", q.Collection, res["n"])
}

// Increment adds n to field with the server's increment transform: one
// write, no read, no transaction, grouped with concurrent writes
// (group.go). Update's exists precondition makes an absent document
// ErrNotFound.
func (db *DB) Increment(ctx context.Context, collection, id, field string, n int64) error {
	return db.write(ctx, "Increment", &writeReq{kind: writeIncrement, ref: db.ref(collection, id), field: field, n: n})
}
