package grpcconn_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	fs "cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/grpcconn"
)

// pingCounter is a listener whose connections count the PING frames the
// client sends (not the acknowledgements of the server's own).
type pingCounter struct {
	net.Listener
	pings   atomic.Int64
	reading sync.WaitGroup // one per connection, until its frames are read
}

func (l *pingCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	l.reading.Add(1)
	go l.count(r)
	return &teeConn{Conn: c, copy: w}, nil
}

// count reads the client's side of one connection as HTTP/2 frames.
func (l *pingCounter) count(r *io.PipeReader) {
	defer l.reading.Done()
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(nil, r)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			l.pings.Add(1)
		}
	}
}

// teeConn copies what it reads (the client's bytes) to copy.
type teeConn struct {
	net.Conn
	copy *io.PipeWriter
}

func (c *teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		_, _ = c.copy.Write(b[:n])
	}
	if err != nil {
		c.copy.CloseWithError(err)
	}
	return n, err
}

// serve runs a gRPC server with register's services on a counting
// listener. stop ends it and its connections and returns the pings read.
func serve(t *testing.T, register func(*grpc.Server)) (addr string, stop func() int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &pingCounter{Listener: ln}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), func() int64 {
		srv.Stop()
		l.reading.Wait()
		return l.pings.Load()
	}
}

// clientPings makes calls unary calls to a gRPC server, each answered with
// data, from a client dialed with opts, and returns the pings it sent.
func clientPings(t *testing.T, calls int, opts ...grpc.DialOption) int64 {
	t.Helper()
	addr, stop := serve(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, health.NewServer()) })
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	client := healthpb.NewHealthClient(conn)
	for range calls {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	return stop()
}

// The default client pings after nearly every answer (its window estimate);
// ours sends none, and so one write and one read fewer per call.
func TestOurClientsSendNoFlowControlPings(t *testing.T) {
	const calls = 50
	got := clientPings(t, calls)
	t.Logf("the default client: %d pings in %d calls", got, calls)
	if got < calls/5 {
		t.Fatalf("the default client sent %d pings in %d calls, want many (else this test measures nothing)", got, calls)
	}
	if got := clientPings(t, calls, grpcconn.DialOptions()...); got != 0 {
		t.Errorf("our client sent %d pings in %d calls, want none", got, calls)
	}
}

// fakeFirestore answers writes as the emulator would when they succeed.
type fakeFirestore struct {
	firestorepb.UnimplementedFirestoreServer
}

func (fakeFirestore) Commit(_ context.Context, r *firestorepb.CommitRequest) (*firestorepb.CommitResponse, error) {
	res := &firestorepb.CommitResponse{CommitTime: timestamppb.Now()}
	for range r.Writes {
		res.WriteResults = append(res.WriteResults, &firestorepb.WriteResult{UpdateTime: res.CommitTime})
	}
	return res, nil
}

// firestorePings makes calls Creates with the client open returns, pointed
// at a fake emulator by FIRESTORE_EMULATOR_HOST, and returns the pings sent.
func firestorePings(t *testing.T, calls int, open func(context.Context) (*fs.Client, func() error)) int64 {
	addr, stop := serve(t, func(s *grpc.Server) { firestorepb.RegisterFirestoreServer(s, fakeFirestore{}) })
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	ctx := context.Background()
	c, closeClient := open(ctx)
	for i := range calls {
		if _, err := c.Collection("pings").Doc(fmt.Sprint(i)).Create(ctx, map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := closeClient(); err != nil {
		t.Fatal(err)
	}
	return stop()
}

// On the emulator the Firestore client dials for itself, without our
// options; the adapter gives it a connection dialed with them, so the
// tests and make bench run on what production runs on.
func TestTheFirestoreAdapterSendsNoFlowControlPingsOnTheEmulatorToo(t *testing.T) {
	const calls = 50
	got := firestorePings(t, calls, func(ctx context.Context) (*fs.Client, func() error) {
		c, err := fs.NewClient(ctx, "pings", grpcconn.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		return c, c.Close
	})
	t.Logf("the Firestore client's own emulator connection: %d pings in %d calls", got, calls)
	if got < calls/5 {
		t.Fatalf("the client's own connection sent %d pings in %d calls, want many (else this test measures nothing)", got, calls)
	}
	got = firestorePings(t, calls, func(ctx context.Context) (*fs.Client, func() error) {
		db, err := firestore.Open(ctx, "pings")
		if err != nil {
			t.Fatal(err)
		}
		return db.Client, db.Close
	})
	if got != 0 {
		t.Errorf("the adapter's client sent %d pings in %d calls, want none", got, calls)
	}
}
