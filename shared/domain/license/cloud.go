package license

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"fulfillment/shared/domain/subscription"
)

// The statuses a cloud license carries.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusRevoked   = "revoked"
)

// AddOns are the packs a license grants besides seats.
type AddOns struct {
	StorageGB      int `json:"storage_gb,omitempty" firestore:"storage_gb"`
	ComputeMinutes int `json:"compute_minutes,omitempty" firestore:"compute_minutes"`
}

// Licensee is who the license was sold to (shown in the instance's admin area).
type Licensee struct {
	Name  string `json:"name,omitempty" firestore:"name"`
	Email string `json:"email,omitempty" firestore:"email"`
}

// Key is a signed license as one string, the form an instance stores and
// sends back with each sync: base64(payload) "." base64(signature). Standard
// base64 has no ".", so the split is unambiguous.
func (s Signed) Key() string { return s.Payload + "." + s.Signature }

// ErrMalformedKey is returned for a string that is not a license key.
var ErrMalformedKey = errors.New("malformed license key")

// maxKey caps a key: a license is a few hundred bytes.
const maxKey = 16 << 10

// ParseKey splits a key (Key) back into a Signed; Verify checks it.
func ParseKey(key string) (Signed, error) {
	key = strings.TrimSpace(key)
	payload, sig, ok := strings.Cut(key, ".")
	if !ok || payload == "" || sig == "" || len(key) > maxKey || strings.Contains(sig, ".") {
		return Signed{}, ErrMalformedKey
	}
	return Signed{Payload: payload, Signature: sig}, nil
}

// VerifyKey parses and verifies a key in one step.
func VerifyKey(key string, pub ed25519.PublicKey) (License, error) {
	s, err := ParseKey(key)
	if err != nil {
		return License{}, err
	}
	return Verify(s, pub)
}

// Activation codes: 24 characters of an alphabet without look-alikes
// (no 0/O, 1/l/I), about 136 bits from crypto/rand.
const (
	CodeLength   = 24
	codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
)

// NewActivationCode returns a fresh unguessable code.
func NewActivationCode() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(codeAlphabet)))
	for range CodeLength {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("license.NewActivationCode: %w", err)
		}
		b.WriteByte(codeAlphabet[n.Int64()])
	}
	return b.String(), nil
}

// WellFormedCode says whether code could be an activation code at all, so
// garbage is refused without a look-up.
func WellFormedCode(code string) bool {
	if len(code) != CodeLength {
		return false
	}
	for i := range len(code) {
		if !strings.ContainsRune(codeAlphabet, rune(code[i])) {
			return false
		}
	}
	return true
}

// HashCode is what the store keeps of a code: HMAC-SHA256 under pepper (a
// secret of the deployment, so a copy of the database alone cannot be
// searched), hex-encoded.
func HashCode(pepper []byte, code string) string {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// Fingerprint identifies what a license grants, leaving out what changes
// with every issue (id, serial, issued-at): two licenses with the same
// fingerprint grant the same, so no new serial is needed.
func Fingerprint(l License) string {
	l.ID, l.Serial, l.IssuedAt = "", 0, time.Time{}
	b, _ := json.Marshal(l)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ForSubscription is the license a subscription calls for now, for the
// instance it is bound to: the paid plan, seats and packs of the current
// term while it runs (past due and grace keep them), nothing while
// suspended, and a revoked license once it was canceled (refund,
// cancellation) or ended. ID, Serial and IssuedAt are left to the issuer.
func ForSubscription(s *subscription.Subscription, instanceID, uniqueInstanceID string) License {
	l := License{
		SubscriptionID: s.ID, InstanceID: instanceID, UniqueInstanceID: uniqueInstanceID,
		PlanCode: s.Order.PlanCode, Seats: s.Order.Seats,
		StartsOn: s.TermStart.Format(time.DateOnly), ExpiresOn: s.TermEnd.Format(time.DateOnly),
		Status: StatusActive, Cloud: true,
		Licensee: Licensee{Name: s.Customer.Name, Email: s.Customer.Email},
		// The order's totals, as provisioning grants a namespace: they hold
		// the checkout's packs and those paid this term, and a renewal sets
		// them to what it was charged for. Not s.Packs: it lists the packs
		// bought mid-term in every term, and none bought at checkout.
		AddOns: AddOns{StorageGB: s.Order.StorageGB, ComputeMinutes: s.Order.ComputeMinutes},
	}
	switch s.Status {
	case subscription.Active, subscription.PastDue, subscription.Grace:
	case subscription.Suspended:
		l.Status, l.PlanCode, l.Seats, l.AddOns = StatusSuspended, "free", 0, AddOns{}
	default: // canceled, expired, or never paid
		l.Status, l.PlanCode, l.Seats, l.AddOns = StatusRevoked, "free", 0, AddOns{}
	}
	return l
}
