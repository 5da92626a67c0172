package notice

import (
	"time"

	"fulfillment/shared/domain/catalog"
)

// Event types other teams publish on subscription-events, by the names agreed
// between the teams (licensing: issue 11; trials: issue 12). They are
// repeated here, with the payload fields notifications reads, until those
// teams' catalog files land; the payloads decode by the agreed JSON names.
const (
	LicenseActivationCodeIssued = "fulfillment.license.activation_code_issued.v1"
	LicenseSyncOverdue          = "fulfillment.license.sync_overdue.v1"
	TrialEnding                 = "fulfillment.trial.ending.v1"
)

// ActivationCodeIssued is the payload of LicenseActivationCodeIssued. The
// activation code is a secret: it travels only here and in the e-mail.
type ActivationCodeIssued struct {
	SubscriptionID string           `json:"subscription_id"`
	ActivationCode string           `json:"activation_code"`
	Customer       catalog.Customer `json:"customer"`
	PlanCode       string           `json:"plan_code"`
	Seats          int              `json:"seats"`
	TermEnd        time.Time        `json:"term_end"`
}

// LicenseSyncOverdueData is the payload of LicenseSyncOverdue.
type LicenseSyncOverdueData struct {
	SubscriptionID string           `json:"subscription_id"`
	InstanceID     string           `json:"instance_id"`
	LastSyncAt     time.Time        `json:"last_sync_at"`
	DaysSinceSync  int              `json:"days_since_sync"`
	GraceEndsAt    time.Time        `json:"grace_ends_at"`
	Customer       catalog.Customer `json:"customer"`
}

// TrialSnapshot is the payload of the trial events (TrialEnding here).
// StartsOn and EndsOn are RFC 3339 dates (YYYY-MM-DD).
type TrialSnapshot struct {
	NamespaceID    string           `json:"namespace_id"`
	PlanCode       string           `json:"plan_code"`
	StartsOn       string           `json:"starts_on"`
	EndsOn         string           `json:"ends_on"`
	Contact        catalog.Customer `json:"contact"`
	SubscriptionID string           `json:"subscription_id,omitempty"`
}
