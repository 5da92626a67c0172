package firestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/runtime/groupcommit"
)

// Grouping: the DB's Get, Create, Set, Delete and Increment outside
// transactions go through groups (shared/runtime/groupcommit), as the
// Pub/Sub adapter's single-event publishes do. A call that finds a free
// flight goes at once, alone; calls that arrive while every flight is busy
// go together in the next one: reads in one BatchGetDocuments
// (Client.GetAll), writes in one BatchWrite (a BulkWriter per flight).
// BatchWrite is not atomic: each write keeps its own precondition and gets
// its own outcome, so a Create still fails alone with ErrAlreadyExists and
// an Increment of an absent document alone with ErrNotFound. The semantics
// are the port's; only the number of requests changes (the emulator's CPU
// per request is what bounds the webhook on it).
//
// Two flights per kind, not the Pub/Sub adapter's four: on the emulators
// (make bench) fewer, larger requests go further, 4 -> 2 took the webhook
// from 742 / 1188 to 807 / 1459 deliveries/s at concurrency 8 / 32; one
// flight (786 / 1609) would let one slow request hold every caller.
const (
	groupFlights   = 2
	groupReadItems = 100
	// groupWriteItems is the BulkWriter's own batch size: one request per flight.
	groupWriteItems = 20
	groupTimeout    = 30 * time.Second
)

type groups struct {
	reads  *groupcommit.Group[*readReq]
	writes *groupcommit.Group[*writeReq]
}

type readReq struct {
	ref  *fs.DocumentRef
	snap *fs.DocumentSnapshot
}

type writeKind int

const (
	writeCreate writeKind = iota
	writeSet
	writeDelete
	writeIncrement
)

type writeReq struct {
	kind  writeKind
	ref   *fs.DocumentRef
	v     any    // writeCreate, writeSet: the document
	field string // writeIncrement: the field and the amount
	n     int64
}

func newGroups(c *fs.Client) *groups {
	return &groups{
		reads: groupcommit.New(func(ctx context.Context, rs []*readReq) []error {
			return getAll(ctx, c, rs)
		}, groupFlights, groupReadItems, groupTimeout),
		writes: groupcommit.New(func(ctx context.Context, ws []*writeReq) []error {
			return bulkWrite(ctx, c, ws)
		}, groupFlights, groupWriteItems, groupTimeout),
	}
}

// getAll reads every request's document in one BatchGetDocuments.
func getAll(ctx context.Context, c *fs.Client, rs []*readReq) []error {
	refs := make([]*fs.DocumentRef, len(rs))
	for i, r := range rs {
		refs[i] = r.ref
	}
	errs := make([]error, len(rs))
	snaps, err := c.GetAll(ctx, refs)
	for i, r := range rs {
		switch {
		case err != nil:
			errs[i] = err
		case i < len(snaps):
			r.snap = snaps[i]
		default:
			errs[i] = fmt.Errorf("GetAll returned %d documents for %d", len(snaps), len(rs))
		}
	}
	return errs
}

// commitOne sends one write as a Commit of its own, for a DB without
// groups. A flight of one write still goes through a BulkWriter: a Commit
// saves the webhook 20-30 us of CPU per write at concurrency 1 but costs
// the Firestore emulator more (docs/testing.md, Bench).
func commitOne(ctx context.Context, w *writeReq) error {
	var err error
	switch w.kind {
	case writeCreate:
		_, err = w.ref.Create(ctx, w.v)
	case writeSet:
		_, err = w.ref.Set(ctx, w.v)
	case writeDelete:
		_, err = w.ref.Delete(ctx)
	case writeIncrement:
		_, err = w.ref.Update(ctx, []fs.Update{incrementOf(w.field, w.n)})
	}
	return err
}

// bulkWrite sends the writes through one BulkWriter, which takes one write
// per document: a second write of a document in the same group (a repeat
// delivery racing its first) goes in a later round, in arrival order.
func bulkWrite(ctx context.Context, c *fs.Client, ws []*writeReq) []error {
	errs := make([]error, len(ws))
	round := make([]int, len(ws))
	seen := map[string]int{}
	rounds := 0
	for i, w := range ws {
		round[i] = seen[w.ref.Path]
		seen[w.ref.Path]++
		rounds = max(rounds, round[i]+1)
	}
	for r := range rounds {
		bw := c.BulkWriter(ctx)
		jobs := make([]*fs.BulkWriterJob, len(ws))
		for i, w := range ws {
			if round[i] != r {
				continue
			}
			switch w.kind {
			case writeCreate:
				jobs[i], errs[i] = bw.Create(w.ref, w.v)
			case writeSet:
				jobs[i], errs[i] = bw.Set(w.ref, w.v)
			case writeDelete:
				jobs[i], errs[i] = bw.Delete(w.ref)
			case writeIncrement:
				jobs[i], errs[i] = bw.Update(w.ref, []fs.Update{incrementOf(w.field, w.n)})
			}
		}
		bw.End()
		for i, j := range jobs {
			if j != nil {
				_, errs[i] = j.Results()
			}
		}
	}
	return errs
}

func incrementOf(field string, n int64) fs.Update {
	return fs.Update{FieldPath: fs.FieldPath(strings.Split(field, ".")), Value: fs.Increment(n)}
}

// groupedGet reads one document through the read group.
func (db *DB) groupedGet(ctx context.Context, ref *fs.DocumentRef, v any) error {
	r := &readReq{ref: ref}
	if err := db.groups.reads.Do(ctx, r); err != nil {
		return mapErr("Get", ref, err)
	}
	if !r.snap.Exists() {
		return mapErr("Get", ref, status.Error(codes.NotFound, "document not found"))
	}
	return snapTo("Get", r.snap, nil, ref, v)
}

// readAll reads the requests' documents through the read group, or in one
// request of their own without groups.
func (db *DB) readAll(ctx context.Context, rs []*readReq) error {
	var errs []error
	if db.groups == nil {
		errs = getAll(ctx, db.Client, rs)
	} else {
		errs = db.groups.reads.DoAll(ctx, rs)
	}
	for i, err := range errs {
		if err != nil {
			return mapErr("GetAll", rs[i].ref, err)
		}
	}
	return nil
}

// write sends one write through the write group, or alone without groups.
func (db *DB) write(ctx context.Context, op string, w *writeReq) error {
	if db.groups == nil {
		return mapErr(op, w.ref, commitOne(ctx, w))
	}
	return mapErr(op, w.ref, db.groups.writes.Do(ctx, w))
}

var _ docstore.DB = (*DB)(nil)
