// Package license issues and verifies self-managed instance licenses:
// a JSON document signed with Ed25519, verifiable offline with the public key.
package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// License is what a self-managed instance is entitled to.
type License struct {
	ID             string    `json:"id" firestore:"id"`
	SubscriptionID string    `json:"subscription_id" firestore:"subscription_id"`
	InstanceID     string    `json:"instance_id" firestore:"instance_id"`
	PlanCode       string    `json:"plan_code" firestore:"plan_code"`
	Seats          int       `json:"seats" firestore:"seats"`
	StartsOn       string    `json:"starts_on" firestore:"starts_on"`
	ExpiresOn      string    `json:"expires_on" firestore:"expires_on"`
	IssuedAt       time.Time `json:"issued_at" firestore:"issued_at"`
	// Cloud licensing (cloud.go): the rest is absent from licenses signed
	// before it, so their bytes are unchanged.
	// Serial orders the licenses of one subscription: a higher serial
	// supersedes every lower one.
	Serial int64 `json:"serial,omitempty" firestore:"serial"`
	// Status is active, suspended (paid features off until paid) or revoked
	// (refunded, canceled or ended: the instance falls back to free).
	Status           string   `json:"status,omitempty" firestore:"status"`
	Cloud            bool     `json:"cloud,omitempty" firestore:"cloud"`
	Offline          bool     `json:"offline,omitempty" firestore:"offline"`
	UniqueInstanceID string   `json:"unique_instance_id,omitempty" firestore:"unique_instance_id"`
	AddOns           AddOns   `json:"add_ons,omitzero" firestore:"add_ons"`
	Licensee         Licensee `json:"licensee,omitzero" firestore:"licensee"`
}

// Signed is a license as delivered: the exact signed bytes and the signature.
type Signed struct {
	Payload   string `json:"payload" firestore:"payload"`     // base64 of the license JSON
	Signature string `json:"signature" firestore:"signature"` // base64 Ed25519 signature of the payload bytes
}

// ErrBadSignature is returned when a license was not signed by the key.
var ErrBadSignature = errors.New("license signature does not verify")

// Sign signs l with key.
func Sign(l License, key ed25519.PrivateKey) (Signed, error) {
	payload, err := json.Marshal(l)
	if err != nil {
		return Signed{}, fmt.Errorf("license.Sign: %w", err)
	}
	return Signed{
		Payload:   base64.StdEncoding.EncodeToString(payload),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}, nil
}

// Verify checks s against pub and returns the license it carries.
func Verify(s Signed, pub ed25519.PublicKey) (License, error) {
	payload, err := base64.StdEncoding.DecodeString(s.Payload)
	if err != nil {
		return License{}, fmt.Errorf("license.Verify: payload: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return License{}, fmt.Errorf("license.Verify: signature: %w", err)
	}
	if !ed25519.Verify(pub, payload, sig) {
		return License{}, ErrBadSignature
	}
	var l License
	if err := json.Unmarshal(payload, &l); err != nil {
		return License{}, fmt.Errorf("license.Verify: %w", err)
	}
	return l, nil
}

// KeyFromSeed decodes a base64 Ed25519 seed (32 bytes), as kept in Secret Manager.
func KeyFromSeed(b64 string) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("license.KeyFromSeed: want base64 of %d bytes", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
