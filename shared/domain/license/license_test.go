package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestSignedLicenseVerifiesOnlyWithItsKey(t *testing.T) {
	seed := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SeedSize))
	key, err := KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	l := License{ID: "lic-1", SubscriptionID: "sub-1", InstanceID: "inst-9", PlanCode: "ultimate", Seats: 25,
		StartsOn: "2026-01-01", ExpiresOn: "2027-01-01", IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Sign(l, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(s, key.Public().(ed25519.PublicKey))
	if err != nil || got != l {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, l)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	if _, err := Verify(s, otherPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other key: err = %v, want ErrBadSignature", err)
	}
	tampered := s
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(`{"id":"lic-1","seats":2500}`))
	if _, err := Verify(tampered, key.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: err = %v, want ErrBadSignature", err)
	}
	if _, err := KeyFromSeed("c2hvcnQ="); err == nil {
		t.Fatal("a short seed was accepted")
	}
}
