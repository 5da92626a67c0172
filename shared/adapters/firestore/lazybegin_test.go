package firestore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"fulfillment/shared/adapters/docstore"
)

// server is what the interceptors pass on: every request, and for a read
// that begins a transaction, the id it answers with.
type server struct {
	sent      []proto.Message
	methods   []string
	nextTx    int
	failSends int // the next reads' sends that fail, as a broken connection's
}

func (s *server) invoker(_ context.Context, method string, req, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
	s.methods = append(s.methods, method)
	s.sent = append(s.sent, proto.Clone(req.(proto.Message)))
	return nil
}

// stream is a BatchGetDocuments call on the server: its answers say the
// document is missing, the first one naming a begun transaction alone.
type stream struct {
	srv     *server
	answers []*firestorepb.BatchGetDocumentsResponse
}

func (s *server) streamer(_ context.Context, _ *grpc.StreamDesc, _ *grpc.ClientConn, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	s.methods = append(s.methods, method)
	return &stream{srv: s}, nil
}

func (st *stream) SendMsg(m any) error {
	if st.srv.failSends > 0 {
		st.srv.failSends--
		return io.ErrUnexpectedEOF
	}
	req := m.(*firestorepb.BatchGetDocumentsRequest)
	st.srv.sent = append(st.srv.sent, proto.Clone(req))
	if req.GetNewTransaction() != nil {
		st.srv.nextTx++
		st.answers = append(st.answers, &firestorepb.BatchGetDocumentsResponse{Transaction: []byte("server-tx-" + string(rune('0'+st.srv.nextTx)))})
	}
	for _, d := range req.Documents {
		st.answers = append(st.answers, &firestorepb.BatchGetDocumentsResponse{Result: &firestorepb.BatchGetDocumentsResponse_Missing{Missing: d}})
	}
	return nil
}

func (st *stream) RecvMsg(m any) error {
	if len(st.answers) == 0 {
		return io.EOF
	}
	proto.Reset(m.(proto.Message)) // as gRPC decodes into it
	proto.Merge(m.(proto.Message), st.answers[0])
	st.answers = st.answers[1:]
	return nil
}

func (*stream) Header() (metadata.MD, error) { return nil, nil }
func (*stream) Trailer() metadata.MD         { return nil }
func (*stream) CloseSend() error             { return nil }
func (*stream) Context() context.Context     { return context.Background() }

// client plays the Go client's part: it begins, reads, commits and rolls
// back through the interceptors.
type client struct {
	t   *testing.T
	l   *lazyBegin
	srv *server
}

func (c client) begin(retrying []byte) []byte {
	req := &firestorepb.BeginTransactionRequest{Database: "db"}
	if retrying != nil {
		req.Options = &firestorepb.TransactionOptions{Mode: &firestorepb.TransactionOptions_ReadWrite_{
			ReadWrite: &firestorepb.TransactionOptions_ReadWrite{RetryTransaction: retrying}}}
	}
	var res firestorepb.BeginTransactionResponse
	if err := c.l.unary(context.Background(), methodBegin, req, &res, nil, c.srv.invoker); err != nil {
		c.t.Fatal(err)
	}
	return res.Transaction
}

// read reads doc in tx and returns the answers the client receives.
func (c client) read(tx []byte, doc string) []*firestorepb.BatchGetDocumentsResponse {
	answers, err := c.send(readOf(tx, doc))
	if err != nil {
		c.t.Fatal(err)
	}
	return answers
}

func readOf(tx []byte, doc string) *firestorepb.BatchGetDocumentsRequest {
	return &firestorepb.BatchGetDocumentsRequest{Database: "db", Documents: []string{doc},
		ConsistencySelector: &firestorepb.BatchGetDocumentsRequest_Transaction{Transaction: tx}}
}

// send sends req on a stream of its own and receives every answer.
func (c client) send(req *firestorepb.BatchGetDocumentsRequest) ([]*firestorepb.BatchGetDocumentsResponse, error) {
	s, err := c.l.stream(context.Background(), nil, nil, methodBatchGet, c.srv.streamer)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, err
	}
	var got []*firestorepb.BatchGetDocumentsResponse
	for {
		var resp firestorepb.BatchGetDocumentsResponse
		if err := s.RecvMsg(&resp); err == io.EOF {
			return got, nil
		} else if err != nil {
			return got, err
		}
		got = append(got, &resp)
	}
}

func (c client) call(method string, req proto.Message) {
	if err := c.l.unary(context.Background(), method, req, nil, nil, c.srv.invoker); err != nil {
		c.t.Fatal(err)
	}
}

func newClient(t *testing.T) client {
	return client{t: t, l: newLazyBegin(), srv: &server{}}
}

func (c client) wantSent(methods ...string) {
	c.t.Helper()
	if strings.Join(c.srv.methods, " ") != strings.Join(methods, " ") {
		c.t.Fatalf("sent %v, want %v", c.srv.methods, methods)
	}
}

// A transaction that reads is begun by its first read, read-write, and the
// server's id is what its later reads and its commit carry; the client
// never sees that id's answer, which it does not know.
func TestATransactionIsBegunByItsFirstRead(t *testing.T) {
	c := newClient(t)
	tx := c.begin(nil)
	c.wantSent()
	answers := c.read(tx, "db/documents/a/1")
	if len(answers) != 1 || answers[0].GetMissing() != "db/documents/a/1" || answers[0].Transaction != nil {
		t.Fatalf("the client received %v, want the one document's answer alone", answers)
	}
	first := c.srv.sent[0].(*firestorepb.BatchGetDocumentsRequest)
	if first.GetNewTransaction().GetReadWrite() == nil {
		t.Fatalf("first read sent %v, want it to begin a read-write transaction", first)
	}
	c.read(tx, "db/documents/a/2")
	if got := string(c.srv.sent[1].(*firestorepb.BatchGetDocumentsRequest).GetTransaction()); got != "server-tx-1" {
		t.Fatalf("second read in transaction %q, want the server's", got)
	}
	c.call(methodCommit, &firestorepb.CommitRequest{Database: "db", Transaction: tx})
	c.wantSent(methodBatchGet, methodBatchGet, methodCommit)
	if got := string(c.srv.sent[2].(*firestorepb.CommitRequest).Transaction); got != "server-tx-1" {
		t.Fatalf("commit in transaction %q, want the server's", got)
	}
	if n := len(c.l.txs); n != 0 {
		t.Fatalf("%d transactions still kept after the commit", n)
	}
}

// One that reads nothing commits its writes without a transaction, and a
// rollback of it sends nothing: nothing was begun on the server.
func TestATransactionThatReadsNothingCommitsWithoutOne(t *testing.T) {
	c := newClient(t)
	c.call(methodCommit, &firestorepb.CommitRequest{Database: "db", Transaction: c.begin(nil),
		Writes: []*firestorepb.Write{{Operation: &firestorepb.Write_Delete{Delete: "db/documents/a/1"}}}})
	c.call(methodRollback, &firestorepb.RollbackRequest{Database: "db", Transaction: c.begin(nil)})
	c.wantSent(methodCommit)
	if commit := c.srv.sent[0].(*firestorepb.CommitRequest); commit.Transaction != nil || len(commit.Writes) != 1 {
		t.Fatalf("commit sent %v, want its write with no transaction", commit)
	}
}

// A retry after an aborted commit names the server's id of the attempt it
// retries, as the client's retry_transaction would have.
func TestARetryNamesTheTransactionItRetries(t *testing.T) {
	c := newClient(t)
	tx := c.begin(nil)
	c.read(tx, "db/documents/a/1")
	c.call(methodRollback, &firestorepb.RollbackRequest{Database: "db", Transaction: tx})
	retry := c.begin(tx)
	c.read(retry, "db/documents/a/1")
	c.wantSent(methodBatchGet, methodRollback, methodBatchGet)
	if got := string(c.srv.sent[1].(*firestorepb.RollbackRequest).Transaction); got != "server-tx-1" {
		t.Fatalf("rollback of %q, want the server's id", got)
	}
	begun := c.srv.sent[2].(*firestorepb.BatchGetDocumentsRequest).GetNewTransaction()
	if got := string(begun.GetReadWrite().GetRetryTransaction()); got != "server-tx-1" {
		t.Fatalf("retry begun with %v, want it to retry server-tx-1", begun)
	}
}

// A read the client library sends again after its send failed begins the
// transaction then, and the commit carries that one's id.
func TestAReadSentAgainBeginsTheTransactionItself(t *testing.T) {
	c := newClient(t)
	tx := c.begin(nil)
	req := readOf(tx, "db/documents/a/1")
	c.srv.failSends = 1
	if _, err := c.send(req); err == nil {
		t.Fatal("the first send did not fail")
	}
	if _, err := c.send(req); err != nil {
		t.Fatal(err)
	}
	c.call(methodCommit, &firestorepb.CommitRequest{Database: "db", Transaction: tx})
	if begun := c.srv.sent[0].(*firestorepb.BatchGetDocumentsRequest).GetNewTransaction(); begun.GetReadWrite() == nil {
		t.Fatalf("the read sent again sent %v, want it to begin the transaction", c.srv.sent[0])
	}
	if got := string(c.srv.sent[1].(*firestorepb.CommitRequest).Transaction); got != "server-tx-1" {
		t.Fatalf("commit in transaction %q, want the one the second send began", got)
	}
}

// A read whose caller is already gone begins no transaction: it is not
// sent, and the attempt is left to begin in a later read.
func TestAReadForACallerAlreadyGoneBeginsNothing(t *testing.T) {
	c := newClient(t)
	tx := c.begin(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := c.l.stream(ctx, nil, nil, methodBatchGet, c.srv.streamer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(readOf(tx, "db/documents/a/1")); status.Code(err) != codes.Canceled {
		t.Fatalf("read for a cancelled caller: %v, want Canceled", err)
	}
	c.wantSent()
	c.read(tx, "db/documents/a/1")
	if c.srv.sent[0].(*firestorepb.BatchGetDocumentsRequest).GetNewTransaction() == nil {
		t.Fatalf("the next read sent %v, want it to begin the transaction", c.srv.sent[0])
	}
}

// What a rolled-back attempt leaves for a retry goes once no retry came.
func TestAbandonedAttemptsAreForgotten(t *testing.T) {
	c := newClient(t)
	c.call(methodRollback, &firestorepb.RollbackRequest{Database: "db", Transaction: c.begin(nil)})
	if len(c.l.txs) != 1 {
		t.Fatalf("%d attempts kept, want the rolled-back one", len(c.l.txs))
	}
	if n := c.keptAfterASweep(retiredFor + time.Second); n != 0 {
		t.Fatalf("%d attempts kept after a sweep, want none", n)
	}
}

// An attempt the client never ended (its callback panicked) goes too.
func TestStaleAttemptsAreForgotten(t *testing.T) {
	c := newClient(t)
	c.begin(nil)
	if n := c.keptAfterASweep(staleAfter + time.Second); n != 0 {
		t.Fatalf("%d attempts kept after a sweep, want none", n)
	}
}

// keptAfterASweep moves the clock on by d, commits attempts until one
// sweeps, and returns how many attempts are kept.
func (c client) keptAfterASweep(d time.Duration) int {
	c.l.now = func() time.Time { return time.Now().Add(d) }
	for range 256 {
		c.call(methodCommit, &firestorepb.CommitRequest{Database: "db", Transaction: c.begin(nil)})
	}
	return len(c.l.txs)
}

// A query cannot begin a transaction here: one that names a stand-in is
// refused, never sent with an id the server does not know.
func TestAQueryInALazyTransactionIsRefused(t *testing.T) {
	c := newClient(t)
	tx := c.begin(nil)
	s, err := c.l.stream(context.Background(), nil, nil, methodRunQuery, c.srv.streamer)
	if err != nil {
		t.Fatal(err)
	}
	err = s.SendMsg(&firestorepb.RunQueryRequest{Parent: "db/documents", ConsistencySelector: &firestorepb.RunQueryRequest_Transaction{Transaction: tx}})
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("query in the transaction: %v, want it refused", err)
	}
}

// fakeFirestore is a Firestore server of its own over plain gRPC: it
// records the methods called, begins a transaction in a read that asks,
// says every document is missing, and takes every commit.
type fakeFirestore struct {
	firestorepb.UnimplementedFirestoreServer
	mu        sync.Mutex
	methods   []string
	commits   []*firestorepb.CommitRequest
	rollbacks [][]byte
	// begun, when set, is called once a read has begun a transaction,
	// before the server answers it.
	begun func()
}

func (f *fakeFirestore) note(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.methods = append(f.methods, method)
}

func (f *fakeFirestore) BeginTransaction(context.Context, *firestorepb.BeginTransactionRequest) (*firestorepb.BeginTransactionResponse, error) {
	f.note("BeginTransaction")
	return &firestorepb.BeginTransactionResponse{Transaction: []byte("begun-by-begin")}, nil
}

func (f *fakeFirestore) BatchGetDocuments(req *firestorepb.BatchGetDocumentsRequest, s firestorepb.Firestore_BatchGetDocumentsServer) error {
	f.note("BatchGetDocuments")
	if req.GetNewTransaction() != nil {
		if f.begun != nil {
			f.begun()
		}
		if err := s.Send(&firestorepb.BatchGetDocumentsResponse{Transaction: []byte("begun-by-read")}); err != nil {
			return err
		}
	}
	for _, d := range req.Documents {
		if err := s.Send(&firestorepb.BatchGetDocumentsResponse{Result: &firestorepb.BatchGetDocumentsResponse_Missing{Missing: d}, ReadTime: timestamppb.Now()}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeFirestore) Commit(_ context.Context, req *firestorepb.CommitRequest) (*firestorepb.CommitResponse, error) {
	f.note("Commit")
	f.mu.Lock()
	f.commits = append(f.commits, req)
	f.mu.Unlock()
	return &firestorepb.CommitResponse{CommitTime: timestamppb.Now(), WriteResults: make([]*firestorepb.WriteResult, len(req.Writes))}, nil
}

func (f *fakeFirestore) Rollback(_ context.Context, req *firestorepb.RollbackRequest) (*emptypb.Empty, error) {
	f.note("Rollback")
	f.mu.Lock()
	f.rollbacks = append(f.rollbacks, req.Transaction)
	f.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// serve runs fake on a free port and returns a DB on it, dialed as off the
// emulator (production): the client's own connection, the adapter's options.
func serve(t *testing.T, fake *fakeFirestore) *DB {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	firestorepb.RegisterFirestoreServer(srv, fake)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	lazy := newLazyBegin()
	opts, conn, err := clientOptions(lazy.DialOptions())
	if err != nil || conn != nil {
		t.Fatalf("client options off the emulator: %v, %v; want no connection of the adapter's", err, conn)
	}
	opts = append(opts, option.WithEndpoint(ln.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	c, err := fs.NewClient(context.Background(), "prod", opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := &DB{Client: c, lazy: lazy}
	t.Cleanup(func() { db.Close() })
	return db
}

// createA creates lazy/a in a transaction that reads it first.
func createA(ctx context.Context, db *DB) error {
	type doc struct {
		N int64 `firestore:"n"`
	}
	return db.RunTx(ctx, func(_ context.Context, tx docstore.Tx) error {
		if err := tx.Get("lazy", "a", &doc{}); !docstore.IsNotFound(err) {
			return err
		}
		return tx.Set("lazy", "a", doc{N: 1})
	})
}

// Off the emulator (production) the client dials its own connection with
// the adapter's options, the lazy begin among them.
func TestOffTheEmulatorTheClientsConnectionBeginsLazily(t *testing.T) {
	fake := &fakeFirestore{}
	if err := createA(context.Background(), serve(t, fake)); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if got := strings.Join(fake.methods, " "); got != "BatchGetDocuments Commit" {
		t.Fatalf("the server was called %q, want the read and the commit alone", got)
	}
	if id := string(fake.commits[0].Transaction); id != "begun-by-read" {
		t.Fatalf("commit in transaction %q, want the one the read began", id)
	}
}

// A caller that gives up while the read beginning its transaction is under
// way still gets the server's id in, so the client's rollback ends the
// transaction: cut off before it, the read would leave the transaction
// holding its read locks until Firestore drops it.
func TestACutOffFirstReadStillHasItsTransactionRolledBack(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fake := &fakeFirestore{begun: cancel}
	err := createA(ctx, serve(t, fake))
	if status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
		t.Fatalf("transaction whose caller gave up during its first read: %v, want its cancellation", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.rollbacks) != 1 || string(fake.rollbacks[0]) != "begun-by-read" || len(fake.commits) != 0 {
		t.Fatalf("server saw %v, rollbacks %q; want the transaction the read began rolled back, nothing committed", fake.methods, fake.rollbacks)
	}
}
