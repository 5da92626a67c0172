package mail

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"fulfillment/shared/runtime/failure"
)

// fakeSMTP answers RCPT TO with rcptReply and accepts the rest.
func fakeSMTP(t *testing.T, rcptReply string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				w := func(s string) { c.Write([]byte(s + "\r\n")) }
				w("220 fake ESMTP")
				data := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case data:
						if cmd == "." {
							data = false
							w("250 queued")
						}
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						w("250 fake")
					case strings.HasPrefix(cmd, "RCPT"):
						w(rcptReply)
					case cmd == "DATA":
						data = true
						w("354 go on")
					case cmd == "QUIT":
						w("221 bye")
						return
					default:
						w("250 ok")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func send(t *testing.T, port int) error {
	t.Helper()
	s, err := New(Config{Host: "127.0.0.1", Port: port, StartTLS: "none", From: "billing@fulfillment.test"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Send(context.Background(), Message{MessageID: "n1@fulfillment.test", To: "ada@example.com", Subject: "s", Text: "t", HTML: "<p>h</p>"})
}

func TestSMTPAnswersDecideDelivery(t *testing.T) {
	t.Parallel()
	if err := send(t, fakeSMTP(t, "250 ok")); err != nil {
		t.Fatalf("accepted: %v", err)
	}
	temp := send(t, fakeSMTP(t, "451 4.3.0 try later"))
	if temp == nil || failure.IsPermanent(temp) {
		t.Fatalf("4xx must be transient, got %v", temp)
	}
	perm := send(t, fakeSMTP(t, "550 5.1.1 no such user"))
	if perm == nil || !failure.IsPermanent(perm) {
		t.Fatalf("5xx must be permanent, got %v", perm)
	}
	for _, err := range []error{temp, perm} {
		if strings.Contains(err.Error(), "ada@example.com") {
			t.Fatalf("the recipient's address is in the error: %v", err)
		}
	}
	// Nobody listening: transient (the server may come back).
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := send(t, port); err == nil || failure.IsPermanent(err) {
		t.Fatalf("no server must be transient, got %v (port %s)", err, strconv.Itoa(port))
	}
}
