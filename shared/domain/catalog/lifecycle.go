package catalog

import "time"

// The renewal function's inbox, TopicRenewalTicks, carries Cloud Scheduler's
// ticks and, besides them, renewal's own work items and the operator's
// subscription changes: one push subscription feeds them all to renewal.
const (
	// RenewalDue asks renewal to run whatever is due for one subscription.
	RenewalDue = "fulfillment.renewal.due.v1"
	// RenewalFanOutPage continues a tick's fan-out after a page cursor.
	RenewalFanOutPage = "fulfillment.renewal.fanout_page.v1"

	CommandAddSeats     = "fulfillment.command.add_seats.v1"
	CommandChangePlan   = "fulfillment.command.change_plan.v1"
	CommandAddPack      = "fulfillment.command.add_pack.v1"
	CommandSetAutoRenew = "fulfillment.command.set_auto_renew.v1"

	SourceOperator = "//fulfillment/fulfillctl"
)

// Due is the payload of RenewalDue.
type Due struct {
	SubscriptionID string    `json:"subscription_id"`
	ReviewAt       time.Time `json:"review_at"`
	Version        int64     `json:"version"`
}

// FanOutPage is the payload of RenewalFanOutPage: where the previous page
// ended, and the tick's time (every page uses the same cut-off).
type FanOutPage struct {
	Tick        string    `json:"tick"`
	Now         time.Time `json:"now"`
	AfterID     string    `json:"after_id"`
	AfterReview time.Time `json:"after_review"`
	Events      int       `json:"events"` // published by the pages before
}

// Command is the payload of every subscription change command. The
// CloudEvent id names the change: it is the change's idempotency key.
type Command struct {
	SubscriptionID string `json:"subscription_id"`
	Seats          int    `json:"seats,omitempty"`       // add_seats
	PlanCode       string `json:"plan_code,omitempty"`   // change_plan
	PackKind       string `json:"pack_kind,omitempty"`   // add_pack: storage or compute_minutes
	PackAmount     int    `json:"pack_amount,omitempty"` // add_pack: GB or minutes
	AutoRenew      bool   `json:"auto_renew,omitempty"`  // set_auto_renew
}
