package notice

import (
	"fulfillment/shared/domain/catalog"
)

// Licensing's events, under the names notifications has used for them.
const (
	LicenseActivationCodeIssued = catalog.LicenseActivationCodeIssued
	LicenseSyncOverdue          = catalog.LicenseOverdue
)

// ActivationCodeIssued is the payload of LicenseActivationCodeIssued. The
// activation code is a secret: it travels only there and in the e-mail.
type ActivationCodeIssued = catalog.ActivationCodeIssued

// LicenseSyncOverdueData is the payload of LicenseSyncOverdue.
type LicenseSyncOverdueData = catalog.LicenseSyncOverdue

// TrialEnding is the trials' event notifications answers, by the name agreed
// with the checkout work; the payload decodes by the agreed JSON names.
const TrialEnding = "fulfillment.trial.ending.v1"

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
