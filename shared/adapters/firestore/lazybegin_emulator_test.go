package firestore_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/testsupport/emulator"
)

const (
	begin    = "/google.firestore.v1.Firestore/BeginTransaction"
	commit   = "/google.firestore.v1.Firestore/Commit"
	batchGet = "/google.firestore.v1.Firestore/BatchGetDocuments"
)

// methods counts the requests that reach the emulator, after the
// adapter's interceptors, and keeps the commits.
type methods struct {
	mu      sync.Mutex
	counts  map[string]int
	commits []*firestorepb.CommitRequest
}

func (m *methods) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	m.mu.Lock()
	m.counts[method]++
	if c, ok := req.(*firestorepb.CommitRequest); ok {
		m.commits = append(m.commits, proto.Clone(c).(*firestorepb.CommitRequest))
	}
	m.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (m *methods) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	m.mu.Lock()
	m.counts[method]++
	m.mu.Unlock()
	return streamer(ctx, desc, cc, method, opts...)
}

// take returns the counts and commits so far and starts anew.
func (m *methods) take() (map[string]int, []*firestorepb.CommitRequest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts, commits := m.counts, m.commits
	m.counts, m.commits = map[string]int{}, nil
	return counts, commits
}

// On the emulator a transaction that reads and writes is two requests, a
// read that begins it and the commit, in the server's transaction; one
// that only writes is a commit alone, all or nothing.
func TestTransactionsOnTheEmulatorAreTheirReadsAndACommit(t *testing.T) {
	ctx := context.Background()
	m := &methods{counts: map[string]int{}}
	db, err := firestore.OpenWith(ctx, emulator.NewProject("lazybegin"), "", grpc.WithChainUnaryInterceptor(m.unary), grpc.WithChainStreamInterceptor(m.stream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	type doc struct {
		N int64 `firestore:"n"`
	}
	if err := db.Set(ctx, "lazy", "a", doc{N: 1}); err != nil {
		t.Fatal(err)
	}
	m.take()

	err = db.RunTx(ctx, func(_ context.Context, tx docstore.Tx) error {
		var d doc
		if err := tx.Get("lazy", "a", &d); err != nil {
			return err
		}
		d.N++
		return tx.Set("lazy", "a", d)
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, commits := m.take()
	if want := map[string]int{batchGet: 1, commit: 1}; !maps.Equal(counts, want) {
		t.Errorf("read and write sent %v, want %v", counts, want)
	}
	if id := commits[0].Transaction; len(id) == 0 || strings.HasPrefix(string(id), firestore.StandInPrefix) {
		t.Errorf("commit in transaction %q, want the one the read began", id)
	}
	var a doc
	if err := db.Get(ctx, "lazy", "a", &a); err != nil || a.N != 2 {
		t.Errorf("after the transaction: %+v, %v; want n 2", a, err)
	}

	m.take()
	err = db.RunTx(ctx, func(_ context.Context, tx docstore.Tx) error {
		if err := tx.Set("lazy", "b", doc{N: 5}); err != nil {
			return err
		}
		return tx.Create("lazy", "a", doc{N: 9})
	})
	if !docstore.IsAlreadyExists(err) {
		t.Fatalf("write-only transaction creating an existing document: %v, want already exists", err)
	}
	if err := db.Get(ctx, "lazy", "b", &doc{}); !docstore.IsNotFound(err) {
		t.Errorf("the failed write-only transaction left b behind (%v)", err)
	}
	counts, commits = m.take()
	if counts[begin] != 0 || counts[commit] != 1 || commits[0].Transaction != nil {
		t.Errorf("write-only transaction sent %v, a commit in transaction %q; want one commit, no transaction", counts, commits[0].Transaction)
	}
	if n := db.LazyAttempts(); n != 1 {
		t.Errorf("%d attempts kept, want the failed one only, kept for a retry", n)
	}
}
