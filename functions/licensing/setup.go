package licensing

import (
	"context"
	"time"

	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Config are licensing's settings.
type Config struct {
	config.Common
	// LicenseSigningKey is the base64 Ed25519 seed licenses are signed with
	// (provisioning's too); instances hold its public key.
	LicenseSigningKey string `env:"LICENSE_SIGNING_KEY,required,notEmpty"`
	// ActivationCodePepper keys the activation codes' hashes; provisioning
	// must have the same one. Required: without it a leaked hash can be
	// checked against guesses offline.
	ActivationCodePepper string `env:"ACTIVATION_CODE_PEPPER,required,notEmpty"`
	// Strict sync: days without a sync before an instance is overdue, and
	// the grace after that before its auto-renewal is turned off.
	OverdueDays int `env:"LICENSE_SYNC_OVERDUE_DAYS" envDefault:"7"`
	GraceDays   int `env:"LICENSE_SYNC_GRACE_DAYS" envDefault:"30"`
	// Activation attempt limits: per client address (in process) and per
	// code (in the store).
	PerIPAttempts     int           `env:"ACTIVATION_PER_IP_ATTEMPTS" envDefault:"20"`
	PerIPWindow       time.Duration `env:"ACTIVATION_PER_IP_WINDOW" envDefault:"1m"`
	PerCodeAttempts   int           `env:"ACTIVATION_PER_CODE_ATTEMPTS" envDefault:"10"`
	PerCodeWindow     time.Duration `env:"ACTIVATION_PER_CODE_WINDOW" envDefault:"1h"`
	TrustForwardedFor bool          `env:"TRUST_FORWARDED_FOR" envDefault:"false"`
	TrustedProxyHops  int           `env:"TRUSTED_PROXY_HOPS" envDefault:"0"`
	// Seat link limits: per client address (in process) and per license
	// (in the store).
	SeatLinksPerIP            int           `env:"SEAT_LINKS_PER_IP" envDefault:"60"`
	SeatLinksPerIPWindow      time.Duration `env:"SEAT_LINKS_PER_IP_WINDOW" envDefault:"1m"`
	SeatLinksPerLicense       int           `env:"SEAT_LINKS_PER_LICENSE" envDefault:"50"`
	SeatLinksPerLicenseWindow time.Duration `env:"SEAT_LINKS_PER_LICENSE_WINDOW" envDefault:"24h"`
}

// Setup builds licensing from the environment (Config).
var Setup = platform.Setup(func(_ context.Context, w platform.Wiring[Config]) (entrypoint.Function, error) {
	key, err := license.KeyFromSeed(w.Config.LicenseSigningKey)
	if err != nil {
		return nil, err
	}
	c := w.Config
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Clock: w.Clock, Logger: w.Logger, Close: w.Close,
		SigningKey: key, CodePepper: []byte(c.ActivationCodePepper),
		Policy: Policy{
			OverdueDays: c.OverdueDays, GraceDays: c.GraceDays,
			PerIPAttempts: c.PerIPAttempts, PerIPWindow: c.PerIPWindow, PerCodeAttempts: c.PerCodeAttempts, PerCodeWindow: c.PerCodeWindow,
			TrustForwardedFor: c.TrustForwardedFor, TrustedProxyHops: c.TrustedProxyHops,
			SeatLinksPerIP: c.SeatLinksPerIP, SeatLinksPerIPWindow: c.SeatLinksPerIPWindow,
			SeatLinksPerLicense: c.SeatLinksPerLicense, SeatLinksPerLicenseWindow: c.SeatLinksPerLicenseWindow,
		},
	}), nil
})
