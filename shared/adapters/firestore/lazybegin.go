package firestore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Lazy begin: the Go client starts every transaction attempt with a
// BeginTransaction request of its own and only then runs the callback,
// whose first read is a BatchGetDocuments. Firestore can begin the
// transaction in that read instead (its new_transaction field, which the
// Go client does not use), saving one request and one round trip per
// transaction: a third of each consumer's transaction requests.
//
// lazyBegin does it under the client, on the gRPC connection: it answers
// BeginTransaction itself with a stand-in id, begins the real transaction
// in the first read that names the stand-in, and puts the real id in the
// attempt's later reads, its Commit and its Rollback. The transaction the
// server runs is the same one, begun one request later, before anything
// is read in it: it reads and locks what it did before. An attempt that
// reads nothing commits its writes without a transaction: Commit applies
// them atomically all the same, and with no reads there is nothing for a
// transaction to hold. Only reads by key begin one (the docstore's Tx has
// no query); a stand-in in any other request is refused, not sent.
type lazyBegin struct {
	mu   sync.Mutex
	txs  map[string]*lazyTx // by stand-in id
	next uint64
	now  func() time.Time // the sweep's clock
}

// lazyTx is one transaction attempt, known by its stand-in id.
type lazyTx struct {
	opts *firestorepb.TransactionOptions
	made time.Time
	mu   sync.Mutex
	real []byte        // the server's id, once a read has begun it
	busy chan struct{} // closed when the read beginning it is done
	// closed is when the client rolled the attempt back; it is kept a
	// while for the next attempt's retry_transaction, which names it.
	closed time.Time
}

// standInPrefix marks the stand-in ids; the server's ids are opaque bytes
// and never looked up, so a collision would only leave one unrecognised.
const standInPrefix = "fulfillment-lazy-begin:"

// retiredFor is how long a rolled-back attempt is kept for a retry to
// name it: the client retries after a backoff of at most a few seconds.
// staleAfter drops any attempt, rolled back or not (one whose callback
// panicked, one whose commit the client library retried past its
// stand-in): Firestore ends a transaction within 270 s.
const (
	retiredFor = time.Minute
	staleAfter = 10 * time.Minute
)

func newLazyBegin() *lazyBegin { return &lazyBegin{txs: map[string]*lazyTx{}, now: time.Now} }

// Firestore's methods that carry a transaction id.
const (
	methodBegin    = "/google.firestore.v1.Firestore/BeginTransaction"
	methodCommit   = "/google.firestore.v1.Firestore/Commit"
	methodRollback = "/google.firestore.v1.Firestore/Rollback"
	methodBatchGet = "/google.firestore.v1.Firestore/BatchGetDocuments"
	// a query in a transaction, which does not begin one here
	methodRunQuery       = "/google.firestore.v1.Firestore/RunQuery"
	methodRunAggregation = "/google.firestore.v1.Firestore/RunAggregationQuery"
)

// DialOptions install the interceptors on a connection.
func (l *lazyBegin) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(l.unary), grpc.WithChainStreamInterceptor(l.stream)}
}

func (l *lazyBegin) lookup(id []byte) *lazyTx {
	if len(id) <= len(standInPrefix) || string(id[:len(standInPrefix)]) != standInPrefix {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.txs[string(id)]
}

func (l *lazyBegin) forget(id []byte) {
	l.mu.Lock()
	delete(l.txs, string(id))
	l.mu.Unlock()
}

// begin answers BeginTransaction with a stand-in; a retry's
// retry_transaction is given the server's id of the attempt it retries.
func (l *lazyBegin) begin(req *firestorepb.BeginTransactionRequest) []byte {
	opts := req.GetOptions()
	if opts == nil {
		// BeginTransaction's default; new_transaction's is read-only.
		opts = &firestorepb.TransactionOptions{Mode: &firestorepb.TransactionOptions_ReadWrite_{ReadWrite: &firestorepb.TransactionOptions_ReadWrite{}}}
	}
	if rw := opts.GetReadWrite(); rw != nil && len(rw.RetryTransaction) > 0 {
		if prev := l.lookup(rw.RetryTransaction); prev != nil {
			l.forget(rw.RetryTransaction)
			opts = &firestorepb.TransactionOptions{Mode: &firestorepb.TransactionOptions_ReadWrite_{
				ReadWrite: &firestorepb.TransactionOptions_ReadWrite{RetryTransaction: prev.realID()}}}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	if l.next%256 == 0 {
		l.sweep()
	}
	id := standInPrefix + strconv.FormatUint(l.next, 10)
	l.txs[id] = &lazyTx{opts: opts, made: l.now()}
	return []byte(id)
}

// sweep drops attempts rolled back long ago that no retry named, and
// stale ones. Held: l.mu.
func (l *lazyBegin) sweep() {
	now := l.now()
	for id, t := range l.txs {
		if c := t.closedAt(); !c.IsZero() && now.Sub(c) > retiredFor || now.Sub(t.made) > staleAfter {
			delete(l.txs, id)
		}
	}
}

func (t *lazyTx) realID() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.real
}

func (t *lazyTx) closedAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (l *lazyBegin) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch method {
	case methodBegin:
		reply.(*firestorepb.BeginTransactionResponse).Transaction = l.begin(req.(*firestorepb.BeginTransactionRequest))
		return nil
	case methodCommit:
		r := req.(*firestorepb.CommitRequest)
		standIn := r.Transaction
		t := l.lookup(standIn)
		if t == nil {
			break
		}
		// Without a real id the attempt read nothing: its writes go in a
		// Commit of their own, atomic without a transaction. It is changed
		// in place, writes and all: should the client library send this
		// very request again, it sends what this one sent.
		r.Transaction = t.realID()
		err := invoker(ctx, method, r, reply, cc, opts...)
		if err == nil {
			l.forget(standIn)
		}
		return err
	case methodRollback:
		r := req.(*firestorepb.RollbackRequest)
		t := l.lookup(r.Transaction)
		if t == nil {
			break
		}
		t.mu.Lock()
		t.closed = l.now()
		real := t.real
		t.mu.Unlock()
		if real == nil {
			return nil // nothing begun on the server
		}
		r.Transaction = real
		return invoker(ctx, method, r, reply, cc, opts...)
	default:
		if holdsStandIn(req, l) {
			return fmt.Errorf("firestore: %s in a lazily begun transaction is not supported", method)
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// holdsStandIn says whether a request other than the four handled names a
// stand-in id as its transaction.
func holdsStandIn(req any, l *lazyBegin) bool {
	switch r := req.(type) {
	case *firestorepb.GetDocumentRequest:
		return l.lookup(r.GetTransaction()) != nil
	case *firestorepb.ListDocumentsRequest:
		return l.lookup(r.GetTransaction()) != nil
	case *firestorepb.RunQueryRequest:
		return l.lookup(r.GetTransaction()) != nil
	case *firestorepb.RunAggregationQueryRequest:
		return l.lookup(r.GetTransaction()) != nil
	}
	return false
}

func (l *lazyBegin) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method == methodBatchGet {
		open := func(ctx context.Context) (grpc.ClientStream, error) { return streamer(ctx, desc, cc, method, opts...) }
		return &readStream{ctx: ctx, open: open, l: l}, nil
	}
	s, err := streamer(ctx, desc, cc, method, opts...)
	switch {
	case err != nil:
		return nil, err
	case method == methodRunQuery || method == methodRunAggregation:
		return &refusingStream{ClientStream: s, l: l, method: method}, nil
	}
	return s, nil
}

// readStream is a BatchGetDocuments call: the one that names a stand-in
// not yet begun begins the transaction, and its answers give the id. Its
// stream is opened when the request is sent, once it is known whether it
// begins one.
type readStream struct {
	grpc.ClientStream // nil until SendMsg
	ctx               context.Context
	open              func(context.Context) (grpc.ClientStream, error)
	l                 *lazyBegin
	beginning         *lazyTx // this read begins it; its first answer holds the id
	// A beginning read runs on a context of its own (detach): cancel ends
	// it, and watch is what ties it to the caller's.
	cancel context.CancelFunc
	watch  func() bool
}

// beginGrace is how long a beginning read outlives its caller, for the
// server's id to arrive so the client's rollback can end the transaction.
const beginGrace = 5 * time.Second

func (s *readStream) SendMsg(m any) error {
	req, ok := m.(*firestorepb.BatchGetDocumentsRequest)
	var t *lazyTx
	if ok {
		t = s.l.lookup(req.GetTransaction())
	}
	if t == nil {
		return s.send(s.ctx, m)
	}
	real, err := s.claim(t)
	if err != nil {
		return err
	}
	// A copy goes: should the client library send req again, it names the
	// stand-in still, and its read begins the transaction if this one did not.
	sent := proto.Clone(req).(*firestorepb.BatchGetDocumentsRequest)
	ctx := s.ctx
	if real != nil {
		sent.ConsistencySelector = &firestorepb.BatchGetDocumentsRequest_Transaction{Transaction: real}
	} else {
		if err := s.ctx.Err(); err != nil {
			s.done(nil) // a caller already gone begins nothing
			return status.FromContextError(err).Err()
		}
		sent.ConsistencySelector = &firestorepb.BatchGetDocumentsRequest_NewTransaction{NewTransaction: t.opts}
		ctx = s.detach()
	}
	if err = s.send(ctx, sent); err != nil {
		s.done(nil)
		s.end()
	}
	return err
}

// send opens the stream on ctx and sends m.
func (s *readStream) send(ctx context.Context, m any) error {
	cs, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.ClientStream = cs
	return cs.SendMsg(m)
}

// detach is the context of a read that begins the transaction: its caller
// giving up does not cut it off before the server's id is in, but beginGrace
// later. Cut off after the server began the transaction, the read would
// leave it without an id to roll it back by, holding its read locks until
// Firestore drops it (measured on the emulator: a later transaction on the
// document failed with "Transaction lock timeout" after 2 s, for about 60 s).
func (s *readStream) detach() context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	s.cancel = cancel
	s.watch = context.AfterFunc(s.ctx, func() { time.AfterFunc(beginGrace, cancel) })
	return ctx
}

// begun is called once the id is in: a caller that gave up meanwhile gets
// its cancellation now (its rollback ends the transaction); else the rest
// of the read follows the caller's context again.
func (s *readStream) begun() error {
	if s.cancel == nil {
		return nil
	}
	s.watch()
	if err := s.ctx.Err(); err != nil {
		s.cancel()
		return status.FromContextError(err).Err()
	}
	s.watch = context.AfterFunc(s.ctx, s.cancel)
	return nil
}

// end releases a beginning read's own context.
func (s *readStream) end() {
	if s.cancel != nil {
		s.watch()
		s.cancel()
	}
}

// claim returns the real id once begun, else nil with the beginning
// claimed for this read: a concurrent read of the same attempt waits.
func (s *readStream) claim(t *lazyTx) ([]byte, error) {
	for {
		t.mu.Lock()
		if t.real != nil || t.busy == nil {
			real := t.real
			if real == nil {
				t.busy = make(chan struct{})
				s.beginning = t
			}
			t.mu.Unlock()
			return real, nil
		}
		busy := t.busy
		t.mu.Unlock()
		select {
		case <-busy:
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
	}
}

// done ends this read's claim, with the server's id when it gave one.
func (s *readStream) done(id []byte) {
	t := s.beginning
	if t == nil {
		return
	}
	s.beginning = nil
	t.mu.Lock()
	if id != nil {
		t.real = id
	}
	close(t.busy)
	t.busy = nil
	t.mu.Unlock()
}

// RecvMsg takes the transaction id out of the answers (the client knows
// no such answer) and skips an answer that held nothing else.
func (s *readStream) RecvMsg(m any) error {
	if s.ClientStream == nil {
		return io.EOF // nothing was sent
	}
	for {
		err := s.ClientStream.RecvMsg(m)
		resp, ok := m.(*firestorepb.BatchGetDocumentsResponse)
		if err != nil || !ok {
			s.done(nil)
			s.end()
			return err
		}
		if len(resp.Transaction) == 0 {
			return nil
		}
		s.done(resp.Transaction)
		if err := s.begun(); err != nil {
			return err
		}
		resp.Transaction = nil
		if resp.Result != nil {
			return nil
		}
	}
}

// The stream's other methods, before it is opened.
func (s *readStream) Header() (metadata.MD, error) {
	if s.ClientStream == nil {
		return nil, nil
	}
	return s.ClientStream.Header()
}

func (s *readStream) Trailer() metadata.MD {
	if s.ClientStream == nil {
		return nil
	}
	return s.ClientStream.Trailer()
}

func (s *readStream) CloseSend() error {
	if s.ClientStream == nil {
		return nil
	}
	return s.ClientStream.CloseSend()
}

func (s *readStream) Context() context.Context {
	if s.ClientStream == nil {
		return s.ctx
	}
	return s.ClientStream.Context()
}

// refusingStream is any other streaming call: one naming a stand-in (a
// query in a transaction) is refused.
type refusingStream struct {
	grpc.ClientStream
	l      *lazyBegin
	method string
}

func (s *refusingStream) SendMsg(m any) error {
	if holdsStandIn(m, s.l) {
		return fmt.Errorf("firestore: %s in a lazily begun transaction is not supported", s.method)
	}
	return s.ClientStream.SendMsg(m)
}
