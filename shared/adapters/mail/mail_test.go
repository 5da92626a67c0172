package mail

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"fulfillment/shared/runtime/failure"
)

// fakeSMTP is an SMTP server that answers each step (AUTH, MAIL, RCPT,
// DATA, and END for the end of the message) as replies says, 250 (354 for
// DATA, 235 for AUTH) otherwise. It offers AUTH PLAIN.
func fakeSMTP(t *testing.T, replies map[string]string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply := func(step, otherwise string) string {
		if r, ok := replies[step]; ok {
			return r
		}
		return otherwise
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go converse(c, reply)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func converse(c net.Conn, reply func(step, otherwise string) string) {
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
				w(reply("END", "250 queued"))
			}
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			w("250-fake")
			w("250 AUTH PLAIN")
		case strings.HasPrefix(cmd, "AUTH"):
			w(reply("AUTH", "235 2.7.0 ok"))
		case strings.HasPrefix(cmd, "MAIL"):
			w(reply("MAIL", "250 ok"))
		case strings.HasPrefix(cmd, "RCPT"):
			w(reply("RCPT", "250 ok"))
		case cmd == "DATA":
			answer := reply("DATA", "354 go on")
			data = strings.HasPrefix(answer, "354")
			w(answer)
		case cmd == "QUIT":
			w(reply("QUIT", "221 bye"))
			return
		default:
			w("250 ok")
		}
	}
}

func send(t *testing.T, port int) error {
	t.Helper()
	return sendAs(t, Config{Host: "127.0.0.1", Port: port, StartTLS: "none", From: "billing@fulfillment.test"})
}

func sendAs(t *testing.T, cfg Config) error {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s.Send(context.Background(), Message{MessageID: "n1@fulfillment.test", To: "ada@example.com", Subject: "s", Text: "t", HTML: "<p>h</p>"})
}

// Each SMTP step's answer decides delivery. A 4xx anywhere is transient;
// one about the server (its greeting, MAIL FROM, AUTH) holds up every
// message, one about a recipient or message (RCPT, DATA) only that one.
// A 5xx about this message or recipient (RCPT, DATA, its end) is permanent:
// no retry delivers it. A 5xx to MAIL FROM or a refused AUTH is about us,
// our sender or credentials: transient and marked as configuration, since
// dead-lettering would lose every notice until someone replays them all.
func TestSMTPAnswersDecideDelivery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		step, reply string
		permanent   bool
		config      bool
		server      bool // every message waits, not this one alone
	}{
		{"RCPT", "451 4.3.0 try later", false, false, false},
		{"RCPT", "550 5.1.1 no such user", true, false, false},
		{"MAIL", "451 4.3.2 system not accepting messages", false, false, true},
		{"MAIL", "452 4.3.1 insufficient system storage", false, false, true},
		{"MAIL", "550 5.7.1 sender not allowed", false, true, true},
		{"MAIL", "553 5.1.8 sender domain does not exist", false, true, true},
		{"DATA", "451 4.3.0 try later", false, false, false},
		{"DATA", "554 5.5.1 no valid recipients", true, false, false},
		{"END", "452 4.3.1 insufficient storage", false, false, false},
		{"END", "552 5.3.4 message too big", true, false, false},
		{"END", "554 5.7.1 message rejected as spam", true, false, false},
		{"AUTH", "535 5.7.8 authentication credentials invalid", false, true, true},
		{"AUTH", "454 4.7.0 temporary authentication failure", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.step+" "+c.reply[:3], func(t *testing.T) {
			t.Parallel()
			port := fakeSMTP(t, map[string]string{c.step: c.reply})
			err := sendAs(t, Config{Host: "127.0.0.1", Port: port, StartTLS: "none", From: "billing@fulfillment.test",
				Username: "fulfillment", Password: "s3cret-smtp-password"})
			if err == nil || failure.IsPermanent(err) != c.permanent || errors.Is(err, ErrConfiguration) != c.config {
				t.Fatalf("%s %q: got %v (permanent %t, configuration %t), want permanent %t, configuration %t",
					c.step, c.reply, err, failure.IsPermanent(err), errors.Is(err, ErrConfiguration), c.permanent, c.config)
			}
			if ServerFailure(err) != c.server {
				t.Fatalf("%s %q: server failure %t, want %t (%v)", c.step, c.reply, ServerFailure(err), c.server, err)
			}
			if strings.Contains(err.Error(), "ada@example.com") || strings.Contains(err.Error(), "s3cret-smtp-password") {
				t.Fatalf("the error names the recipient or the password: %v", err)
			}
		})
	}
	if err := send(t, fakeSMTP(t, nil)); err != nil {
		t.Fatalf("accepted: %v", err)
	}
	// Nobody listening: transient (the server may come back).
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := send(t, port); err == nil || failure.IsPermanent(err) || !ServerFailure(err) {
		t.Fatalf("no server must be transient, got %v (port %s)", err, strconv.Itoa(port))
	}
}
