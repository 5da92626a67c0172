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

// TestFingerprintChangesWithWhatTheLicenseGrants: a new serial is signed
// exactly when the fingerprint changes, so it must ignore the issuer's
// fields (id, serial, issued-at) and change with anything the license grants.
func TestFingerprintChangesWithWhatTheLicenseGrants(t *testing.T) {
	t.Parallel()
	base := License{SubscriptionID: "sub-1", InstanceID: "inst-1", PlanCode: "premium", Seats: 10,
		StartsOn: "2026-01-15", ExpiresOn: "2027-01-15", Status: StatusActive, Cloud: true}
	reissued := base
	reissued.ID, reissued.Serial, reissued.IssuedAt = "lic-sub-1-s7", 7, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if Fingerprint(reissued) != Fingerprint(base) {
		t.Fatal("the issuer's fields changed the fingerprint")
	}
	for name, change := range map[string]func(*License){
		"seats":    func(l *License) { l.Seats = 14 },
		"plan":     func(l *License) { l.PlanCode = "ultimate" },
		"status":   func(l *License) { l.Status = StatusSuspended },
		"storage":  func(l *License) { l.AddOns.StorageGB = 10 },
		"term":     func(l *License) { l.ExpiresOn = "2028-01-15" },
		"instance": func(l *License) { l.InstanceID = "inst-2" },
		"offline":  func(l *License) { l.Cloud, l.Offline = false, true },
	} {
		l := base
		change(&l)
		if Fingerprint(l) == Fingerprint(base) {
			t.Errorf("a change of %s kept the fingerprint", name)
		}
	}
}
