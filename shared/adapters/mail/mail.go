// Package mail sends multipart (plain text + HTML) e-mail over SMTP with
// github.com/wneessen/go-mail. The Message-ID is the caller's: derived from
// the event, so a resend of the same notice carries the same id. SMTP's
// answer decides delivery: 4xx (and no connection at all) is transient, 5xx
// is permanent. Error texts never carry an address or the password.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"fulfillment/shared/runtime/failure"
)

// Config is where and how to send.
type Config struct {
	Host string
	Port int
	// Username and Password authenticate (SMTP AUTH PLAIN) when Username is set.
	Username string
	Password string
	// StartTLS: "mandatory", "opportunistic" or "none" (a local Mailpit).
	StartTLS string
	From     string
	FromName string
	Timeout  time.Duration
}

// Message is one e-mail.
type Message struct {
	// MessageID is the Message-ID without angle brackets (id@domain).
	MessageID string
	To        string
	ToName    string
	Subject   string
	Text      string
	HTML      string
	Date      time.Time
	// Headers are extra headers (X-Fulfillment-Notice: the kind).
	Headers map[string]string
}

// Sender sends over one SMTP server. Between sends it keeps up to
// keptConns connections open, each used by one send at a time: a send on a
// kept one skips the dial, the greeting, EHLO, STARTTLS and AUTH (about
// 0.3 ms of CPU per e-mail to a local Mailpit, both sides, and in
// production a TLS handshake). A kept connection the server has closed
// fails go-mail's connection check, a NOOP before MAIL FROM, so nothing
// went on it and the send takes another or dials; any later failure is the
// message's outcome and is never retried here (after DATA it could send
// the message twice).
type Sender struct {
	cfg  Config
	kept chan *conn
	now  func() time.Time
}

// conn is a connected client and when its last send ended.
type conn struct {
	c    *gomail.Client
	used time.Time
}

// keptConns bounds the connections kept open (a function instance's
// concurrent sends beyond it dial their own); keptFor is how long one is
// kept unused, well within the idle timeouts of SMTP servers (Postfix's
// smtpd_timeout is 300 s), so a kept one is rarely found closed.
const (
	keptConns = 4
	keptFor   = 30 * time.Second
)

// New returns a sender for cfg.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" || cfg.Port <= 0 || cfg.From == "" {
		return nil, fmt.Errorf("mail.New: host, port and from are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &Sender{cfg: cfg, kept: make(chan *conn, keptConns), now: time.Now}, nil
}

// Close ends the kept connections (QUIT).
func (s *Sender) Close() error {
	var errs []error
	for {
		select {
		case cn := <-s.kept:
			errs = append(errs, cn.c.Close())
		default:
			return errors.Join(errs...)
		}
	}
}

func (s *Sender) client() (*gomail.Client, error) {
	policy := gomail.TLSMandatory
	switch s.cfg.StartTLS {
	case "none":
		policy = gomail.NoTLS
	case "opportunistic":
		policy = gomail.TLSOpportunistic
	}
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTLSPolicy(policy), gomail.WithTimeout(s.cfg.Timeout)}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	return gomail.NewClient(s.cfg.Host, opts...)
}

// Send delivers m. Its error is permanent for a 5xx answer or a message that
// cannot be built, transient otherwise.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.FromFormat(s.cfg.FromName, s.cfg.From); err != nil {
		return failure.Permanentf("mail.Send: sender address: %s", reason(err))
	}
	if err := msg.AddToFormat(m.ToName, m.To); err != nil {
		// The address is the customer's: it stays out of the error text.
		return failure.Permanentf("mail.Send: recipient address does not parse")
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID)
	if !m.Date.IsZero() {
		msg.SetDateWithValue(m.Date)
	} else {
		msg.SetDate()
	}
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	for {
		cn, kept, err := s.take(ctx)
		if err != nil {
			return err
		}
		err = cn.c.Send(msg)
		if err == nil {
			s.keep(cn)
			return nil
		}
		_ = cn.c.Close()
		if !kept || !closedWhileKept(err) {
			return classify(err)
		}
	}
}

// take returns a kept connection still within keptFor, else a new one.
func (s *Sender) take(ctx context.Context) (cn *conn, kept bool, err error) {
	for {
		select {
		case cn := <-s.kept:
			if s.now().Sub(cn.used) < keptFor {
				return cn, true, nil
			}
			_ = cn.c.Close()
			continue
		default:
		}
		break
	}
	c, err := s.client()
	if err != nil {
		return nil, false, failure.Permanentf("mail.Send: client: %s", reason(err))
	}
	if err := c.DialWithContext(ctx); err != nil {
		return nil, false, classify(err)
	}
	return &conn{c: c}, false, nil
}

// keep puts cn back for the next send, or closes it when enough are kept.
func (s *Sender) keep(cn *conn) {
	cn.used = s.now()
	select {
	case s.kept <- cn:
	default:
		_ = cn.c.Close()
	}
}

// closedWhileKept says the send failed its connection check (the NOOP
// before MAIL FROM): the server closed the kept connection, and nothing
// of the message went on it.
func closedWhileKept(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrConnCheck
}

// ErrConfiguration marks a failure that is ours, not the message's: the
// server refused our sender (5xx to MAIL FROM) or our credentials (AUTH).
// It is transient, so no notice is dead-lettered for it, and callers alert
// on it: it lasts until someone fixes the configuration.
var ErrConfiguration = errors.New("mail: the SMTP server refuses our sender or credentials")

// ErrUnavailable marks a failure of the server as a whole (unreachable, a
// 4xx greeting or answer to MAIL FROM, no answer): every message waits for
// it, unlike a 4xx about one recipient or message (a full mailbox,
// greylisting), which holds up that message alone.
var ErrUnavailable = errors.New("mail: the SMTP server cannot take mail now")

// ServerFailure reports whether err stops every message, not only this one:
// the server unavailable, or our own sender or credentials refused.
func ServerFailure(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConfiguration)
}

// classify maps go-mail's error to a delivery outcome, with a text that
// names neither recipient nor credentials (SendError's own text lists the
// affected recipients). A 5xx about the message or its recipient (RCPT,
// DATA, end of data) is permanent; about us (MAIL FROM, AUTH) it is
// ErrConfiguration; anything else, 4xx and no answer at all, is transient.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return classifySend(se)
	}
	if code, ok := authRefused(err); ok {
		return fmt.Errorf("mail.Send: smtp AUTH answered %d: %w", code, ErrConfiguration)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("mail.Send: smtp unreachable: %s: %w", reason(err), ErrUnavailable)
	}
	return fmt.Errorf("mail.Send: %s: %w", reason(err), ErrUnavailable)
}

func classifySend(se *gomail.SendError) error {
	code := se.ErrorCode()
	what := fmt.Sprintf("mail.Send: smtp %s", sendReason(se.Reason))
	if code > 0 {
		what += " answered " + strconv.Itoa(code)
	}
	switch {
	case code >= 500 && code < 600 && se.Reason == gomail.ErrSMTPMailFrom:
		return fmt.Errorf("%s: %w", what, ErrConfiguration)
	case code >= 500 && code < 600:
		return failure.Permanent(errors.New(what))
	case (code >= 400 && code < 500 || se.IsTemp()) && se.Reason != gomail.ErrSMTPMailFrom:
		return errors.New(what + " (temporary)") // about this message or recipient
	}
	return fmt.Errorf("%s: %w", what, ErrUnavailable)
}

// authRefused reports a permanent (5xx) answer to AUTH, which go-mail
// returns as a dial error carrying the server's reply.
func authRefused(err error) (int, bool) {
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code < 500 || te.Code >= 600 || !strings.Contains(strings.ToLower(err.Error()), "auth") {
		return 0, false
	}
	return te.Code, true
}

func sendReason(r gomail.SendErrReason) string {
	switch r {
	case gomail.ErrSMTPMailFrom:
		return "MAIL FROM"
	case gomail.ErrSMTPRcptTo:
		return "RCPT TO"
	case gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return "DATA"
	case gomail.ErrConnCheck:
		return "connection check"
	}
	return "send"
}

// reason is err's text scrubbed of addresses and secret shapes.
func reason(err error) string { return failure.Scrub(err.Error()) }
