package mail

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// countingSMTP is fakeSMTP that counts what it took: connections, the
// messages it answered at their end, QUITs; it can close every connection
// it holds, as a server does with idle ones, and change an answer.
type countingSMTP struct {
	port int

	mu                    sync.Mutex
	conns                 []net.Conn
	accepted, ends, quits int
	replies               map[string]string
}

func newCountingSMTP(t *testing.T) *countingSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingSMTP{port: ln.Addr().(*net.TCPAddr).Port, replies: map[string]string{}}
	t.Cleanup(func() { ln.Close(); s.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go converse(c, s.reply)
		}
	}()
	return s
}

func (s *countingSMTP) reply(step, otherwise string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch step {
	case "END":
		s.ends++
	case "QUIT":
		s.quits++
	}
	if r, ok := s.replies[step]; ok {
		return r
	}
	return otherwise
}

func (s *countingSMTP) answer(step, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[step] = reply
}

// closeAll closes the server's side of every connection.
func (s *countingSMTP) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// counts are the connections accepted, messages ended and QUITs so far.
func (s *countingSMTP) counts() (accepted, ends, quits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.ends, s.quits
}

func newSender(t *testing.T, port int) *Sender {
	t.Helper()
	s, err := New(Config{Host: "127.0.0.1", Port: port, StartTLS: "none", From: "billing@fulfillment.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func notice(n int) Message {
	return Message{MessageID: "n" + string(rune('a'+n)) + "@fulfillment.test", To: "ada@example.com", Subject: "s", Text: "t", HTML: "<p>h</p>"}
}

// afterOneSend is a sender that has sent one message to a counting server,
// its connection kept.
func afterOneSend(t *testing.T) (*countingSMTP, *Sender) {
	t.Helper()
	srv := newCountingSMTP(t)
	s := newSender(t, srv.port)
	if err := s.Send(context.Background(), notice(0)); err != nil {
		t.Fatal(err)
	}
	return srv, s
}

// Sends one after another go on one connection.
func TestSendsShareAConnection(t *testing.T) {
	srv := newCountingSMTP(t)
	s := newSender(t, srv.port)
	for i := range 5 {
		if err := s.Send(context.Background(), notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	if accepted, ends, _ := srv.counts(); accepted != 1 || ends != 5 {
		t.Fatalf("%d connections for %d messages, want 1 for 5", accepted, ends)
	}
}

// A kept connection the server has closed is found so before the message
// goes: the send dials again and the message goes once.
func TestAConnectionTheServerClosedIsDialedAgain(t *testing.T) {
	srv, s := afterOneSend(t)
	srv.closeAll()
	if err := s.Send(context.Background(), notice(1)); err != nil {
		t.Fatalf("send after the server closed the kept connection: %v", err)
	}
	if accepted, ends, _ := srv.counts(); accepted != 2 || ends != 2 {
		t.Fatalf("%d connections, %d messages; want 2 and 2 (each message once)", accepted, ends)
	}
}

// A connection unused for keptFor is closed, not used.
func TestAConnectionUnusedTooLongIsNotUsed(t *testing.T) {
	srv, s := afterOneSend(t)
	s.now = func() time.Time { return time.Now().Add(keptFor + time.Second) }
	if err := s.Send(context.Background(), notice(1)); err != nil {
		t.Fatal(err)
	}
	if accepted, _, quits := srv.counts(); accepted != 2 || quits != 1 {
		t.Fatalf("%d connections, %d QUITs; want a new connection and the old one quit", accepted, quits)
	}
}

// A failure once the message is under way is its outcome: no retry on
// another connection, which could deliver it twice.
func TestAFailureAfterTheCheckIsNotRetried(t *testing.T) {
	srv, s := afterOneSend(t)
	srv.answer("END", "451 4.3.0 try later")
	err := s.Send(context.Background(), notice(1))
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("a 451 at the end of the message: %v, want a transient failure of that message", err)
	}
	if _, ends, _ := srv.counts(); ends != 2 {
		t.Fatalf("%d messages ended at the server, want 2: the failed one once", ends)
	}
}

// Concurrent sends each have a connection of their own; at most keptConns
// stay open after them, and later sends use those.
func TestConcurrentSendsKeepSomeConnections(t *testing.T) {
	srv := newCountingSMTP(t)
	s := newSender(t, srv.port)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Send(context.Background(), notice(i)) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	before, _, _ := srv.counts()
	if n := len(s.kept); n < 1 || n > keptConns {
		t.Fatalf("%d connections kept, want 1 to %d", n, keptConns)
	}
	for i := range 5 {
		if err := s.Send(context.Background(), notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	if accepted, ends, _ := srv.counts(); accepted != before || ends != 15 {
		t.Fatalf("%d connections after %d, %d messages; want no new connection and 15 messages", accepted, before, ends)
	}
}

// Close quits the kept connections.
func TestCloseQuitsTheKeptConnections(t *testing.T) {
	srv, s := afterOneSend(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, _, quits := srv.counts(); quits != 1; _, _, quits = srv.counts() {
		if time.Now().After(deadline) {
			t.Fatalf("%d QUITs after Close, want 1", quits)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
