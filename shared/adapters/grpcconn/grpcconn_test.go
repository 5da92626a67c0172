package grpcconn_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"fulfillment/shared/adapters/grpcconn"
)

// pingCounter is a listener whose connections count the PING frames the
// client sends (not the acknowledgements of the server's own).
type pingCounter struct {
	net.Listener
	pings atomic.Int64
}

func (l *pingCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	go l.count(r)
	return &teeConn{Conn: c, copy: w}, nil
}

// count reads the client's side of one connection as HTTP/2 frames.
func (l *pingCounter) count(r *io.PipeReader) {
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

// clientPings makes calls unary calls to a gRPC server, each answered with
// data, from a client dialed with opts, and returns the pings it sent.
func clientPings(t *testing.T, calls int, opts ...grpc.DialOption) int64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &pingCounter{Listener: ln}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	client := healthpb.NewHealthClient(conn)
	for range calls {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close() // ends the connection, so count has read every frame
	srv.Stop()
	return l.pings.Load()
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
