package catalog

import "time"

// Cloud licensing events (functions/licensing and provisioning), published on
// TopicSubscriptionEvents with the subscription id as subject.
const (
	// LicenseActivationCodeIssued carries a self-managed subscription's
	// activation code in plaintext, so the customer can be told it: the only
	// place the code travels (the store keeps its hash).
	LicenseActivationCodeIssued = "fulfillment.license.activation_code_issued.v1"
	// LicenseActivated: an instance activated the subscription's code.
	LicenseActivated = "fulfillment.license.activated.v1"
	// LicenseOverdue: an activated instance has not synced for the
	// configured number of days (data LicenseSyncOverdue).
	LicenseOverdue = "fulfillment.license.sync_overdue.v1"

	SourceLicensing = "//fulfillment/licensing"
)

// ActivationCodeIssued is the payload of LicenseActivationCodeIssued.
type ActivationCodeIssued struct {
	SubscriptionID string    `json:"subscription_id"`
	ActivationCode string    `json:"activation_code"`
	Customer       Customer  `json:"customer"`
	PlanCode       string    `json:"plan_code"`
	Seats          int       `json:"seats"`
	TermEnd        time.Time `json:"term_end"`
}

// LicenseActivation is the payload of LicenseActivated.
type LicenseActivation struct {
	SubscriptionID string    `json:"subscription_id"`
	InstanceID     string    `json:"instance_id"`
	ActivatedAt    time.Time `json:"activated_at"`
}

// LicenseSyncOverdue is the payload of LicenseOverdue.
type LicenseSyncOverdue struct {
	SubscriptionID string    `json:"subscription_id"`
	InstanceID     string    `json:"instance_id"`
	LastSyncAt     time.Time `json:"last_sync_at"`
	DaysSinceSync  int       `json:"days_since_sync"`
	GraceEndsAt    time.Time `json:"grace_ends_at"`
	Customer       Customer  `json:"customer"`
}
