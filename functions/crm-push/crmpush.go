// Package crmpush keeps Salesforce in step with subscriptions: it upserts the
// customer's Account and the subscription record by external id, and never
// sends an older version of a subscription over a newer one.
package crmpush

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/telemetry"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "crm-push"

// Salesforce objects and the external id fields they are upserted by.
const (
	AccountObject            = "Account"
	AccountExternalID        = "Fulfillment_Customer_Id__c"
	SubscriptionObject       = "Fulfillment_Subscription__c"
	SubscriptionExternalID   = "Fulfillment_Subscription_Id__c"
	salesforceUpsertDeadline = 20 * time.Second
)

// CRM upserts records by external id.
type CRM interface {
	Upsert(ctx context.Context, sobject, externalIDField, externalID string, fields map[string]any) error
}

// Deps are what crm-push needs.
type Deps struct {
	Store           *store.Store
	Publisher       pubsub.Publisher
	CRM             CRM
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
}

// Synced is what crm_sync keeps: the subscription version Salesforce has.
type Synced = store.CRMSynced

// Function is crm-push.
type Function struct {
	consumer.Base
	d Deps
}

// New returns crm-push.
func New(d Deps) *Function {
	f := &Function{d: d}
	push := f.UpsertOnSubscriptionChange
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Routes: map[string]consumer.HandlerFunc{
			catalog.SubscriptionActivated: push,
			catalog.SubscriptionRenewed:   push,
			catalog.SubscriptionPastDue:   push,
			catalog.SubscriptionCanceled:  push,
			catalog.SubscriptionExpired:   push,
			catalog.SubscriptionChanged:   push,
			catalog.SubscriptionGrace:     push,
			catalog.SubscriptionSuspended: push,
		},
	}}
	return f
}

// UpsertOnSubscriptionChange pushes the account and the subscription to
// Salesforce unless a newer version is there already.
func (f *Function) UpsertOnSubscriptionChange(ctx context.Context, in event.Event) error {
	var snap catalog.SubscriptionSnapshot
	if err := cloudevent.DecodeData(in, &snap); err != nil {
		return err
	}
	if snap.ID == "" || snap.Version <= 0 {
		return failure.Permanentf("crmpush: subscription snapshot without id or version (id %q, version %d)", snap.ID, snap.Version)
	}
	var last Synced // what Salesforce last got, read under the lease with the dedupe record
	work := consumer.AfterEffect(
		func(ctx context.Context) error {
			if last.Version >= snap.Version {
				return nil // Salesforce has this version or a newer one
			}
			err := f.upsert(ctx, snap)
			telemetry.CallDone(ctx, "salesforce", "upsert", err)
			return err
		},
		func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
			synced, err := f.syncedVersion(ctx, tx, snap.ID)
			if err != nil || synced >= snap.Version {
				return nil, err
			}
			return nil, f.d.Store.SaveCRMSync(tx, Synced{SubscriptionID: snap.ID, Version: snap.Version, Status: snap.Status, SyncedAt: time.Now().UTC()})
		})
	// One version at a time reaches Salesforce, so an older one never lands after a newer one.
	work.Serialize, work.Version = snap.ID, snap.Version
	work.Prefetch = []*store.Read{{Collection: store.CRMSync, ID: snap.ID, Into: &last}}
	work.Reads = []store.Key{{Collection: store.CRMSync, ID: snap.ID}} // read again in the transaction
	return f.Processor.Once(ctx, in, work)
}

// syncedVersion is the version Salesforce last got, 0 for none. A failed
// read is an error, never "none": it could let an older version overwrite.
func (f *Function) syncedVersion(ctx context.Context, tx store.Tx, id string) (int64, error) {
	s, _, err := f.d.Store.CRMSync(ctx, tx, id)
	if err != nil {
		return 0, fmt.Errorf("crmpush.syncedVersion: %w", err)
	}
	return s.Version, nil
}

// upsert sends the account, then the subscription that refers to it.
// Version__c lets Salesforce-side rules refuse an older write too.
func (f *Function) upsert(ctx context.Context, s catalog.SubscriptionSnapshot) error {
	ctx, cancel := context.WithTimeout(ctx, salesforceUpsertDeadline)
	defer cancel()
	account := accountID(s)
	if err := f.d.CRM.Upsert(ctx, AccountObject, AccountExternalID, account, map[string]any{
		"Name": accountName(s.Customer), "Billing_Email__c": s.Customer.Email,
	}); err != nil {
		return err
	}
	return f.d.CRM.Upsert(ctx, SubscriptionObject, SubscriptionExternalID, s.ID, map[string]any{
		"Account__r":    map[string]any{AccountExternalID: account},
		"Plan__c":       s.Order.PlanCode,
		"Seats__c":      s.Order.Seats,
		"Status__c":     s.Status,
		"Deployment__c": s.Order.Deployment,
		"Term_Start__c": s.TermStart.Format(time.DateOnly),
		"Term_End__c":   s.TermEnd.Format(time.DateOnly),
		"Auto_Renew__c": s.Order.AutoRenew,
		"Version__c":    s.Version,
	})
}

// accountID is the account's external id: the Stripe customer, or for a
// guest checkout (Stripe's default in payment mode: "customer": null) one
// account per subscription until a customer exists.
func accountID(s catalog.SubscriptionSnapshot) string {
	if s.Customer.ProviderCustomerID != "" {
		return s.Customer.ProviderCustomerID
	}
	return "guest-" + s.ID
}

func accountName(c catalog.Customer) string {
	switch {
	case c.Name != "":
		return c.Name
	case c.ProviderCustomerID != "":
		return c.ProviderCustomerID
	}
	return "Guest customer"
}
