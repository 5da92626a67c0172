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

// TrialEnding is the checkout function's notice that a trial ends soon.
const TrialEnding = catalog.TrialEnding

// TrialSnapshot is the payload of the trial events.
type TrialSnapshot = catalog.TrialSnapshot
