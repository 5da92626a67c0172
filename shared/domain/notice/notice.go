// Package notice decides who hears what: a subscription, payment or
// licensing event becomes zero or more customer e-mails (subject, recipient,
// template data, essential or not) and in-app notices for GitLab. Pure: no
// I/O; the notifications function sends what it decides.
package notice

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/money"
	"fulfillment/shared/domain/proration"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/failure"
)

// Kind names a moment a customer is told about; it names its templates.
type Kind string

// The moments.
const (
	PurchaseConfirmation Kind = "purchase_confirmation"
	ActivationCode       Kind = "activation_code"
	RenewalNotice        Kind = "renewal_notice"
	ReconciliationNotice Kind = "reconciliation_notice"
	RenewalReceipt       Kind = "renewal_receipt"
	ChangeReceipt        Kind = "change_receipt"
	TrueUpInvoice        Kind = "true_up_invoice"
	TrueUpReceipt        Kind = "true_up_receipt"
	PaymentFailed        Kind = "payment_failed"
	GraceWarning         Kind = "grace_warning"
	Suspended            Kind = "suspended"
	Canceled             Kind = "canceled"
	Expired              Kind = "expired"
	TrialEndingSoon      Kind = "trial_ending"
	SyncOverdue          Kind = "sync_overdue"
)

// Kinds lists every moment (each has a text and an HTML template).
var Kinds = []Kind{PurchaseConfirmation, ActivationCode, RenewalNotice, ReconciliationNotice, RenewalReceipt,
	ChangeReceipt, TrueUpInvoice, TrueUpReceipt, PaymentFailed, GraceWarning, Suspended, Canceled, Expired, TrialEndingSoon, SyncOverdue}

// Email is one message to one customer.
type Email struct {
	Kind Kind
	// Essential messages (receipts, failures, suspensions, the end of a
	// subscription) are sent whatever the customer's preferences say.
	Essential bool
	To        catalog.Customer
	Subject   string
	Data      Data
}

// Data is what the templates show. Name is customer-supplied: the HTML
// templates escape it (html/template), as every field.
type Data struct {
	Name           string
	SubscriptionID string
	Plan           string
	Seats          int
	Deployment     string
	NamespaceID    string
	InstanceID     string
	TermStart      string
	TermEnd        string
	// Amount is the moment's figure in the subscription's currency: on a
	// receipt, what was paid (tax excluded, Tax apart) on invoice InvoiceID.
	Amount    string
	Tax       string
	InvoiceID string
	// NoCharge says the change was made without a charge (auto-renew off,
	// a downgrade at term end).
	NoCharge bool
	// Date is the moment's key date (charge, invoice, retry, suspension, ...).
	Date           string
	SeatsOwed      int
	ActivationCode string
	Reason         string
	DaysSinceSync  int
	// ManageURL is where the customer manages the subscription; CardURL
	// where the payment method is updated.
	ManageURL string
	CardURL   string
	// UnsubscribeURL, on non-essential e-mails only, is the customer's
	// signed opt-out link (set by the sender, which holds the key).
	UnsubscribeURL string
}

// UpcomingReconciliation is the in-app notice GitLab shows from
// DisplayAlertFrom: PUT /api/v4/internal/upcoming_reconciliations.
type UpcomingReconciliation struct {
	NamespaceID            int64
	NextReconciliationDate time.Time
	DisplayAlertFrom       time.Time
}

// Decision is what one event causes.
type Decision struct {
	Emails          []Email
	Reconciliations []UpcomingReconciliation
}

// Account is what the store holds of the subscription that the event does
// not carry; zero when there is none (a trial).
type Account struct {
	Currency string
	Dunning  subscription.Dunning
	// Customer and PlanCode are the subscription's billing contact and plan,
	// for events that carry no snapshot (payment failures).
	Customer catalog.Customer
	PlanCode string
}

// Input is one event and what it is decided with.
type Input struct {
	Type    string
	Data    []byte
	Now     time.Time
	Account Account
	Policy  subscription.Policy
	// PortalURL is the customer portal's base URL (no trailing slash).
	PortalURL string
}

// Handles lists the event types notifications acts on.
var Handles = []string{
	catalog.SubscriptionActivated, catalog.SubscriptionRenewed, catalog.SubscriptionChanged,
	catalog.SubscriptionRenewalNotice, catalog.SubscriptionReconciliationNotice, catalog.SubscriptionGrace,
	catalog.SubscriptionSuspended, catalog.SubscriptionCanceled, catalog.SubscriptionExpired, catalog.PaymentFailed,
	LicenseActivationCodeIssued, LicenseSyncOverdue, TrialEnding, catalog.ChargePaid,
}

// Decide turns one event into what is sent. An undecodable payload is a
// permanent error; an event with nobody to tell is an empty decision.
func Decide(in Input) (Decision, error) {
	switch in.Type {
	case LicenseActivationCodeIssued:
		var a ActivationCodeIssued
		if err := decode(in, &a); err != nil {
			return Decision{}, err
		}
		if a.ActivationCode == "" {
			return Decision{}, failure.Permanentf("notice: %s without an activation code", in.Type)
		}
		d := Data{Name: a.Customer.Name, SubscriptionID: a.SubscriptionID, Plan: PlanName(a.PlanCode), Seats: a.Seats,
			Deployment: catalog.DeploymentSelfManaged, TermEnd: date(a.TermEnd), ActivationCode: a.ActivationCode, ManageURL: in.manage(a.SubscriptionID)}
		return one(a.Customer, ActivationCode, true, fmt.Sprintf("Your activation code for GitLab %s", d.Plan), d), nil
	case LicenseSyncOverdue:
		var s LicenseSyncOverdueData
		if err := decode(in, &s); err != nil {
			return Decision{}, err
		}
		d := Data{Name: s.Customer.Name, SubscriptionID: s.SubscriptionID, InstanceID: s.InstanceID, DaysSinceSync: s.DaysSinceSync,
			Date: date(s.GraceEndsAt), ManageURL: in.manage(s.SubscriptionID)}
		return one(s.Customer, SyncOverdue, true, fmt.Sprintf("Your GitLab instance has not synced for %d days", s.DaysSinceSync), d), nil
	case TrialEnding:
		var t TrialSnapshot
		if err := decode(in, &t); err != nil {
			return Decision{}, err
		}
		d := Data{Name: t.Contact.Name, Plan: PlanName(t.PlanCode), NamespaceID: t.NamespaceID, TermStart: t.StartsOn, TermEnd: t.EndsOn,
			Date: t.EndsOn, ManageURL: in.PortalURL + "/trials/" + t.NamespaceID}
		return one(t.Contact, TrialEndingSoon, false, fmt.Sprintf("Your GitLab %s trial ends on %s", d.Plan, t.EndsOn), d), nil
	case catalog.PaymentFailed:
		return in.paymentFailed()
	case catalog.ChargePaid:
		return in.chargePaid()
	}
	var s catalog.SubscriptionSnapshot
	if err := decode(in, &s); err != nil {
		return Decision{}, err
	}
	if s.ID == "" {
		return Decision{}, failure.Permanentf("notice: %s snapshot without an id", in.Type)
	}
	return in.fromSnapshot(s), nil
}

// paymentFailed tells the subscription's billing contact (in.Account) that
// a payment failed: how much, when it is retried (or that it is not), and
// how to update the card.
func (in Input) paymentFailed() (Decision, error) {
	customer, planCode := in.Account.Customer, in.Account.PlanCode
	var f catalog.PaymentFailure
	if err := decode(in, &f); err != nil {
		return Decision{}, err
	}
	if f.SubscriptionID == "" {
		return Decision{}, failure.Permanentf("notice: payment failure without a subscription id")
	}
	d := Data{Name: customer.Name, SubscriptionID: f.SubscriptionID, Plan: PlanName(planCode), Amount: money.Format(f.AmountCents, in.Account.Currency),
		ManageURL: in.manage(f.SubscriptionID), CardURL: in.card(f.SubscriptionID)}
	subject := fmt.Sprintf("Your payment of %s failed: please update your card", d.Amount)
	dn := in.Account.Dunning
	if !f.DunningSince.IsZero() { // as it was when the failure was applied
		dn = subscription.Dunning{FailedAt: f.DunningSince, Retries: f.Retries}
	}
	if next, ok := in.nextRetry(dn); ok {
		d.Date = date(next)
		subject = fmt.Sprintf("Your payment of %s failed: we will try again on %s", d.Amount, d.Date)
	} else if !dn.FailedAt.IsZero() {
		d.Reason = "every retry has failed"
	}
	return one(customer, PaymentFailed, true, subject, d), nil
}

// nextRetry is when the open renewal invoice in dunning dn is charged
// again, if it is (under notifications' copy of the retry days: the
// failure's producer does not know them).
func (in Input) nextRetry(dn subscription.Dunning) (time.Time, bool) {
	if dn.FailedAt.IsZero() || dn.Retries >= len(in.Policy.RetryDays) {
		return time.Time{}, false
	}
	return dn.FailedAt.Add(time.Duration(in.Policy.RetryDays[dn.Retries]) * 24 * time.Hour), true
}

func (in Input) fromSnapshot(s catalog.SubscriptionSnapshot) Decision {
	cur := in.Account.Currency
	plan, _ := catalog.LookupPlan(s.Order.PlanCode)
	d := Data{Name: s.Customer.Name, SubscriptionID: s.ID, Plan: PlanName(s.Order.PlanCode), Seats: s.Order.Seats, Deployment: s.Order.Deployment,
		NamespaceID: s.Order.NamespaceID, InstanceID: s.Order.InstanceID, TermStart: date(s.TermStart), TermEnd: date(s.TermEnd),
		Reason: s.Reason, ManageURL: in.manage(s.ID), CardURL: in.card(s.ID)}
	switch in.Type {
	case catalog.SubscriptionActivated:
		d.Amount = money.Format(plan.TermPriceCents(s.Order), cur) // an event from before charges were announced
		d.charged(s.Charge)
		return one(s.Customer, PurchaseConfirmation, true, fmt.Sprintf("Receipt for your GitLab %s subscription: %s", d.Plan, d.Amount), d)
	case catalog.SubscriptionRenewed:
		d.Amount = money.Format(plan.TermPriceCents(s.Order), cur)
		d.charged(s.Charge)
		return one(s.Customer, RenewalReceipt, true, fmt.Sprintf("Receipt: your GitLab %s subscription is renewed until %s: %s", d.Plan, d.TermEnd, d.Amount), d)
	case catalog.SubscriptionChanged:
		return in.changed(s, d)
	case catalog.SubscriptionRenewalNotice:
		next := s.Order
		if s.RenewalSeats > 0 {
			next.Seats = s.RenewalSeats
		}
		if s.PendingPlan != "" {
			next.PlanCode = s.PendingPlan
		}
		np, _ := catalog.LookupPlan(next.PlanCode)
		d.Plan, d.Seats = PlanName(next.PlanCode), next.Seats
		d.Amount = money.Format(np.TermPriceCents(next), cur)
		d.Date = date(scheduled(s, subscription.ActCharge, s.TermEnd.Add(-in.Policy.ChargeLead)).At)
		return one(s.Customer, RenewalNotice, false,
			fmt.Sprintf("Your GitLab %s subscription renews on %s: %s will be charged on %s", d.Plan, d.TermEnd, d.Amount, d.Date), d)
	case catalog.SubscriptionReconciliationNotice:
		trueUp := scheduled(s, subscription.ActTrueUp, in.Now.Add(in.Policy.TrueUpDelay))
		invoiceOn, cents := trueUp.At, trueUp.AmountCents
		if cents == 0 { // an event from before renewal announced its schedule
			owed := catalog.Order{PlanCode: s.Order.PlanCode, Seats: s.SeatsOwed, TermMonths: s.Order.TermMonths}
			cents = proration.Cents(plan.TermPriceCents(owed), s.TermStart, s.TermEnd, invoiceOn)
		}
		d.SeatsOwed = s.SeatsOwed
		d.Amount = money.Format(cents, cur)
		d.Date = date(invoiceOn)
		out := one(s.Customer, ReconciliationNotice, false,
			fmt.Sprintf("%d seats over your GitLab %s subscription: %s will be invoiced on %s", d.SeatsOwed, d.Plan, d.Amount, d.Date), d)
		if ns, err := strconv.ParseInt(s.Order.NamespaceID, 10, 64); err == nil && s.Order.Deployment == catalog.DeploymentSaaS && ns > 0 {
			out.Reconciliations = []UpcomingReconciliation{{NamespaceID: ns, NextReconciliationDate: day(invoiceOn), DisplayAlertFrom: day(in.Now)}}
		}
		return out
	case catalog.SubscriptionGrace:
		from := in.Account.Dunning.GraceFrom
		if from.IsZero() {
			from = in.Now
		}
		d.Date = date(scheduled(s, subscription.ActSuspend, from.Add(time.Duration(in.Policy.GraceDays)*24*time.Hour)).At)
		return one(s.Customer, GraceWarning, true, fmt.Sprintf("Action needed: your GitLab %s subscription will be suspended on %s", d.Plan, d.Date), d)
	case catalog.SubscriptionSuspended:
		at := in.Account.Dunning.SuspendedAt
		if at.IsZero() {
			at = in.Now
		}
		d.Date = date(scheduled(s, subscription.ActCancel, at.Add(time.Duration(in.Policy.SuspensionDays)*24*time.Hour)).At)
		return one(s.Customer, Suspended, true, fmt.Sprintf("Your GitLab %s subscription is suspended", d.Plan), d)
	case catalog.SubscriptionCanceled:
		return one(s.Customer, Canceled, true, fmt.Sprintf("Your GitLab %s subscription is canceled", d.Plan), d)
	case catalog.SubscriptionExpired:
		d.Date = d.TermEnd
		return one(s.Customer, Expired, true, fmt.Sprintf("Your GitLab %s subscription expired on %s", d.Plan, d.TermEnd), d)
	}
	return Decision{}
}

// changed tells of a change: a receipt with what it cost when a payment
// made it (seats, upgrade, pack), the true-up's invoice when renewal raised
// one (its receipt follows on payment: chargePaid), else a change receipt
// that says nothing was charged.
func (in Input) changed(s catalog.SubscriptionSnapshot, d Data) Decision {
	c := s.Charge
	if c != nil && c.Kind == string(ledger.TrueUp) && c.Outcome != string(ledger.Paid) {
		d.charged(c)
		d.SeatsOwed = c.Seats
		return one(s.Customer, TrueUpInvoice, true, fmt.Sprintf("Invoice for your GitLab %s subscription: %s, %s due", d.Plan, s.Reason, d.Amount), d)
	}
	// A change made by a refund or a lost dispute names its line too: only a
	// paid one is a receipt's amount.
	if c != nil && c.Outcome == string(ledger.Paid) {
		d.charged(c)
	}
	d.NoCharge = c == nil
	subject := fmt.Sprintf("Your GitLab %s subscription changed: %s", d.Plan, s.Reason)
	if d.Amount != "" {
		subject += ": " + d.Amount + " paid"
	}
	return one(s.Customer, ChangeReceipt, true, subject, d)
}

// chargePaid is a true-up's receipt, sent when its invoice is paid; other
// charges have theirs with the subscription event their payment causes.
func (in Input) chargePaid() (Decision, error) {
	var n catalog.ChargeNotice
	if err := decode(in, &n); err != nil {
		return Decision{}, err
	}
	if n.SubscriptionID == "" {
		return Decision{}, failure.Permanentf("notice: charge paid without a subscription id")
	}
	if n.Charge.Kind != string(ledger.TrueUp) {
		return Decision{}, nil
	}
	d := Data{Name: in.Account.Customer.Name, SubscriptionID: n.SubscriptionID, Plan: PlanName(in.Account.PlanCode), SeatsOwed: n.Charge.Seats,
		Reason: n.Charge.Description, Date: date(n.Charge.At), ManageURL: in.manage(n.SubscriptionID)}
	d.charged(&n.Charge)
	return one(in.Account.Customer, TrueUpReceipt, true, fmt.Sprintf("Receipt for your GitLab %s true-up: %s paid", d.Plan, d.Amount), d), nil
}

// charged puts the ledger line's figures in: what was paid (or is due),
// its tax, its invoice. A zero line changes nothing.
func (d *Data) charged(c *catalog.Charge) {
	if c == nil {
		return
	}
	d.Amount, d.InvoiceID = money.Format(c.AmountCents, c.Currency), c.InvoiceID
	if c.TaxCents > 0 {
		d.Tax = money.Format(c.TaxCents, c.Currency)
	}
}

// scheduled is the step action of the snapshot's schedule (renewal's own
// dates), else one at fallback, computed here for events without one.
func scheduled(s catalog.SubscriptionSnapshot, action subscription.Action, fallback time.Time) catalog.ScheduledStep {
	for _, st := range s.Schedule {
		if st.Action == string(action) {
			return st
		}
	}
	return catalog.ScheduledStep{Action: string(action), At: fallback}
}

// one is a decision of a single e-mail, or none without an address.
func one(to catalog.Customer, k Kind, essential bool, subject string, d Data) Decision {
	if strings.TrimSpace(to.Email) == "" {
		return Decision{}
	}
	return Decision{Emails: []Email{{Kind: k, Essential: essential, To: to, Subject: subject, Data: d}}}
}

func decode(in Input, v any) error {
	if err := json.Unmarshal(in.Data, v); err != nil {
		return failure.Permanentf("notice: decode %s: %w", in.Type, err)
	}
	return nil
}

func (in Input) manage(id string) string { return in.PortalURL + "/subscriptions/" + id }
func (in Input) card(id string) string {
	return in.PortalURL + "/subscriptions/" + id + "/payment_method"
}

// PlanName is a plan code as customers read it: "premium" -> "Premium".
func PlanName(code string) string {
	if code == "" {
		return ""
	}
	return strings.ToUpper(code[:1]) + code[1:]
}

func day(t time.Time) time.Time {
	y, m, dd := t.UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}
