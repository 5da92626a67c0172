// Package provisioning turns subscription events into entitlements: a call to
// GitLab's provisioning API for a SaaS namespace, a signed license for a
// self-managed instance. It records what was applied (entitlements, licenses)
// and announces provisioning completed or failed.
package provisioning

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/runtime/telemetry"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "provisioning"

// Provisioner is GitLab's provisioning API.
type Provisioner interface {
	Provision(ctx context.Context, namespaceID string, req gitlab.ProvisionRequest) error
	Current(ctx context.Context, namespaceID string) (gitlab.Current, bool, error)
}

// Deps are what provisioning needs.
type Deps struct {
	Store      *store.Store
	Publisher  pubsub.Publisher
	GitLab     Provisioner
	LicenseKey ed25519.PrivateKey
	// CodePepper keys the hash activation codes are stored under (the
	// licensing function checks codes with the same pepper).
	CodePepper      []byte
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
}

// EntitlementStatus is the outcome an entitlement records (store.EntitlementStatus).
type EntitlementStatus = store.EntitlementStatus

// The statuses of an entitlement.
const (
	EntitlementActive  = store.EntitlementActive
	EntitlementRevoked = store.EntitlementRevoked
	EntitlementFailed  = store.EntitlementFailed
)

// Entitlement is what was last applied for a subscription (store.Entitlement).
type Entitlement = store.Entitlement

// Function is provisioning.
type Function struct {
	consumer.Base
	d Deps
}

// New returns provisioning.
func New(d Deps) *Function {
	f := &Function{d: d}
	grant := f.ProvisionOnSubscriptionChange
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Routes: map[string]consumer.HandlerFunc{
			catalog.SubscriptionActivated: grant,
			catalog.SubscriptionRenewed:   grant,
			catalog.SubscriptionCanceled:  grant,
			catalog.SubscriptionExpired:   grant,
			catalog.SubscriptionChanged:   grant, // seats, plan, packs, auto-renew
			catalog.SubscriptionSuspended: grant, // deprovisioned; data kept
		},
	}}
	return f
}

// Plan is the entitlement a subscription state calls for: its paid plan
// while it runs, nothing while suspended or once it has ended.
func Plan(s catalog.SubscriptionSnapshot) Entitlement {
	e := Entitlement{
		SubscriptionID: s.ID, PlanCode: s.Order.PlanCode, Seats: s.Order.Seats,
		StartsOn: s.TermStart.Format(time.DateOnly), EndsOn: s.TermEnd.Format(time.DateOnly),
		StorageGB: s.Order.StorageGB, ComputeMinutes: s.Order.ComputeMinutes,
		Status: EntitlementActive, Version: s.Version,
		// One provisioning order per subscription version: GitLab's idempotency key.
		PurchaseXID: idempotency.PurchaseXID(s.PurchaseID, s.Version),
		Target:      catalog.NamespaceTarget(s.Order.NamespaceID),
	}
	if s.Order.Deployment == catalog.DeploymentSelfManaged {
		e.Target = catalog.InstanceTarget(s.Order.InstanceID)
	}
	if s.Status == "canceled" || s.Status == "expired" || s.Status == "suspended" {
		e.PlanCode, e.Seats, e.StorageGB, e.ComputeMinutes, e.Status = "free", 0, 0, 0, EntitlementRevoked
	}
	return e
}

// ProvisionOnSubscriptionChange applies the entitlement a subscription event
// calls for, unless this or a newer version was applied already. The
// version applied is read under the lease (provisionOnce, record), not
// before it too: nearly every delivery is of a new version, and a stale
// one, rare, finds it there and changes nothing.
func (f *Function) ProvisionOnSubscriptionChange(ctx context.Context, in event.Event) error {
	var snap catalog.SubscriptionSnapshot
	if err := cloudevent.DecodeData(in, &snap); err != nil {
		return err
	}
	if snap.ID == "" || snap.Version <= 0 {
		return failure.Permanentf("provisioning: subscription snapshot without id or version (id %q, version %d)", snap.ID, snap.Version)
	}
	want := Plan(snap)
	// A self-managed subscription gets its activation code with its first
	// license; the code is drawn here, outside the transaction, and kept
	// (hashed) only if the subscription has none yet.
	code, err := newCode(snap)
	if err != nil {
		return err
	}
	record := func(e Entitlement, signed *license.Signed) func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
		return func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
			issue := code != "" && e.Status != EntitlementFailed
			if issue { // reads come before writes in a transaction
				_, has, err := f.d.Store.CloudLicense(ctx, tx, snap.ID)
				if err != nil {
					return nil, err
				}
				issue = !has
			}
			out, recorded, err := f.record(ctx, tx, in, e, signed)
			if err != nil || !recorded || !issue {
				return out, err // a stale event records nothing, and draws no code
			}
			issued, err := f.issueCode(ctx, tx, in, snap, code)
			return append(out, issued...), err
		}
	}
	var work consumer.Work
	if snap.Order.Deployment == catalog.DeploymentSaaS {
		req := gitlabRequest(want, snap)
		var last Entitlement // what was applied, read under the lease with the dedupe record
		prior := &store.Read{Collection: store.Entitlements, ID: snap.ID, Into: &last}
		var again bool // this version was attempted before (consumer.Work.Again)
		work = consumer.AfterEffect(func(ctx context.Context) error {
			mayHold := again || (prior.Found && sameGrant(last, want))
			return f.provisionOnce(ctx, snap, want, req, appliedVersion(last, prior.Found), mayHold)
		}, record(want, nil))
		work.Prefetch, work.Again = []*store.Read{prior}, &again
	} else {
		// Signing is deterministic and calls nobody: the license is a value
		// the transaction records, not an effect.
		s, err := f.issueLicense(snap, want)
		if err != nil {
			return err
		}
		want.LicenseID = licenseID(snap)
		work = consumer.Work{Apply: record(want, &s)}
	}
	// One version at a time reaches GitLab, so an older one never lands
	// after a newer one. On GitLab.com the lease is the namespace's, which
	// checkout's trials hold too (catalog.NamespaceLeaseOwner): one change
	// of a namespace at a time, whoever makes it.
	work.Serialize, work.Version = snap.ID, snap.Version
	if snap.Order.Deployment == catalog.DeploymentSaaS {
		work.Serialize, work.VersionOf = want.Target, snap.ID
	}
	work.Reads = recordReads(snap)
	err = f.Processor.Once(ctx, in, work)
	if failure.IsPermanent(err) {
		// Record the failure and announce it; the delivery is dead-lettered too.
		want.Status, want.Error = EntitlementFailed, err.Error()
		if recErr := f.Processor.Once(ctx, in, consumer.Work{Apply: record(want, nil), Reads: recordReads(snap)}); recErr != nil {
			return recErr
		}
	}
	return err
}

// recordReads are the documents record reads: the entitlement applied,
// and a self-managed subscription's cloud license (whether it has a code).
func recordReads(s catalog.SubscriptionSnapshot) []store.Key {
	keys := []store.Key{{Collection: store.Entitlements, ID: s.ID}}
	if s.Order.Deployment == catalog.DeploymentSelfManaged {
		keys = append(keys, store.Key{Collection: store.CloudLicenses, ID: s.ID})
	}
	return keys
}

// revocationLeaves is what a revocation of a namespace sends, if anything:
// another subscription of the namespace whose plan was applied holds it
// (nil: no call; a new purchase while this one was suspended, say), and a
// trial running there gets its trial plan back, with the revoked packs
// cleared; otherwise req, the free plan. It runs under the namespace's
// lease, which checkout's trials hold too, so neither changes meanwhile.
func (f *Function) revocationLeaves(ctx context.Context, snap catalog.SubscriptionSnapshot, want Entitlement, req gitlab.ProvisionRequest) (*gitlab.ProvisionRequest, error) {
	if want.Status != EntitlementRevoked {
		return &req, nil
	}
	others, err := f.d.Store.EntitlementsOf(ctx, want.Target)
	if err != nil {
		return nil, fmt.Errorf("provisioning.revocationLeaves: %w", err)
	}
	for _, e := range others {
		if e.SubscriptionID != snap.ID && e.Status == EntitlementActive {
			logging.FromContext(ctx).InfoContext(ctx, "revocation leaves the namespace to another subscription", "holder", e.SubscriptionID)
			return nil, nil
		}
	}
	t, found, err := f.d.Store.Trial(ctx, snap.Order.NamespaceID)
	if err != nil {
		return nil, fmt.Errorf("provisioning.revocationLeaves: %w", err)
	}
	if found && t.Status == store.TrialActive {
		req.BaseProduct = gitlab.TrialProduct(t.NamespaceID, t.PlanCode, t.StartsOn, t.EndsOn)
	}
	return &req, nil
}

// provisionOnce sends GitLab req, want's request, unless this or a newer
// version was applied (applied, read under the lease: a delivery that held
// it before may have), a revocation leaves the namespace to another holder
// (revocationLeaves), or GitLab already holds it. GitLab is asked what it
// holds only where it may (mayHold): this version was attempted before (a
// delivery that crashed between its call and its commit may have sent it),
// or it grants what the version applied last did (a cancellation after a
// suspension). A new grant's first delivery was sent by nobody: one call.
func (f *Function) provisionOnce(ctx context.Context, snap catalog.SubscriptionSnapshot, want Entitlement, req gitlab.ProvisionRequest, applied int64, mayHold bool) error {
	if applied >= snap.Version {
		return nil
	}
	leaves, err := f.revocationLeaves(ctx, snap, want, req)
	if err != nil || leaves == nil {
		return err
	}
	req = *leaves
	if mayHold {
		cur, ok, err := f.d.GitLab.Current(ctx, snap.Order.NamespaceID)
		if err != nil {
			return err
		}
		if ok && cur.Matches(req) {
			return nil
		}
	}
	err = f.d.GitLab.Provision(ctx, snap.Order.NamespaceID, req)
	telemetry.CallDone(ctx, "gitlab", "provision", err)
	return err
}

// sameGrant says want grants at GitLab what the entitlement applied last,
// last, did (another version, the same plan, seats, dates, packs and status).
func sameGrant(last, want Entitlement) bool {
	return last.Status != EntitlementFailed && last.Status == want.Status && last.PlanCode == want.PlanCode &&
		last.Seats == want.Seats && last.StartsOn == want.StartsOn && last.EndsOn == want.EndsOn &&
		last.StorageGB == want.StorageGB && last.ComputeMinutes == want.ComputeMinutes
}

// appliedVersion is the version of the entitlement last applied, 0 for
// none (or a failed one).
func appliedVersion(e Entitlement, found bool) int64 {
	if !found || e.Status == EntitlementFailed {
		return 0
	}
	return e.Version
}

// record writes the entitlement (and license) and announces the outcome,
// unless this version or a newer one is applied already (recorded false).
func (f *Function) record(ctx context.Context, tx store.Tx, in event.Event, e Entitlement, signed *license.Signed) (out []consumer.Outgoing, recorded bool, err error) {
	switch current, found, err := f.d.Store.Entitlement(ctx, tx, e.SubscriptionID); {
	case err != nil:
		return nil, false, err
	case found && current.Version >= e.Version && current.Status != EntitlementFailed:
		return nil, false, nil // a stale event: this version or a newer one was applied
	}
	e.AppliedAt = time.Now().UTC()
	if err := f.d.Store.SaveEntitlement(tx, e); err != nil {
		return nil, false, err
	}
	if signed != nil {
		if err := f.d.Store.SaveLicense(tx, e.LicenseID, store.License{
			SubscriptionID: e.SubscriptionID, Payload: signed.Payload, Signature: signed.Signature, IssuedAt: e.AppliedAt,
		}); err != nil {
			return nil, false, err
		}
	}
	typ := catalog.ProvisioningCompleted
	if e.Status == EntitlementFailed {
		typ = catalog.ProvisioningFailed
	}
	ev, err := cloudevent.New(ctx, cloudevent.DerivedID(in, typ), catalog.SourceProvisioning, typ, e.SubscriptionID, catalog.ProvisioningResult{
		SubscriptionID: e.SubscriptionID, Version: e.Version, Target: e.Target, PurchaseID: e.PurchaseXID,
		PlanCode: e.PlanCode, Seats: e.Seats, LicenseID: e.LicenseID, Error: e.Error,
	})
	if err != nil {
		return nil, false, err
	}
	return []consumer.Outgoing{{Topic: catalog.TopicProvisioningEvents, Event: ev}}, true, nil
}

func gitlabRequest(e Entitlement, s catalog.SubscriptionSnapshot) gitlab.ProvisionRequest {
	req := gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{
		PlanCode: e.PlanCode, Seats: e.Seats, MaxSeatsUsed: s.MaxSeatsUsed, StartDate: e.StartsOn, EndDate: e.EndsOn,
		AutoRenew: s.Order.AutoRenew && e.Status == EntitlementActive, PurchaseXID: e.PurchaseXID,
	}}
	// The extras are always sent, so GitLab ends with exactly what the
	// entitlement says: a pack bought is set, and a pack dropped or revoked
	// (Plan zeroes them when the subscription is suspended or has ended) is
	// cleared with size 0, no end date, and 0 extra minutes. Leaving the
	// hashes out would leave GitLab's previous values in place.
	storage := gitlab.Storage{}
	if e.StorageGB > 0 {
		storage = gitlab.Storage{AdditionalPurchasedStorageSize: e.StorageGB * 1024, AdditionalPurchasedStorageEndsOn: e.EndsOn}
	}
	req.Storage = &storage
	req.ComputeMinutes = &gitlab.ComputeMinutes{ExtraSharedRunnersMinutesLimit: e.ComputeMinutes}
	return req
}

func licenseID(s catalog.SubscriptionSnapshot) string {
	return idempotency.LicenseID(s.ID, s.Version)
}

// issueLicense signs the license; Ed25519 signatures are deterministic, so a
// retried delivery stores the same bytes.
func (f *Function) issueLicense(s catalog.SubscriptionSnapshot, e Entitlement) (license.Signed, error) {
	return license.Sign(license.License{
		ID: licenseID(s), SubscriptionID: s.ID, InstanceID: s.Order.InstanceID, PlanCode: e.PlanCode, Seats: e.Seats,
		StartsOn: e.StartsOn, ExpiresOn: e.EndsOn, IssuedAt: s.TermStart,
	}, f.d.LicenseKey)
}

// newCode draws an activation code for a running self-managed
// subscription, "" for any other.
func newCode(s catalog.SubscriptionSnapshot) (string, error) {
	if s.Order.Deployment != catalog.DeploymentSelfManaged {
		return "", nil
	}
	switch s.Status {
	case "active", "past_due", "grace":
		return license.NewActivationCode()
	}
	return "", nil
}

// issueCode keeps the code's hash (for a subscription without one) and
// announces the plaintext (LicenseActivationCodeIssued) for the customer:
// the outgoing event, recorded with the dedupe record, is the one place it
// is kept, and fulfillctl show reads it from there once.
func (f *Function) issueCode(ctx context.Context, tx store.Tx, in event.Event, s catalog.SubscriptionSnapshot, code string) ([]consumer.Outgoing, error) {
	if err := f.d.Store.IssueActivationCode(tx, s.ID, license.HashCode(f.d.CodePepper, code), Name+"_"+cloudevent.Key(in), time.Now().UTC()); err != nil {
		return nil, err
	}
	out, err := cloudevent.New(ctx, cloudevent.DerivedID(in, catalog.LicenseActivationCodeIssued), catalog.SourceProvisioning,
		catalog.LicenseActivationCodeIssued, s.ID, catalog.ActivationCodeIssued{
			SubscriptionID: s.ID, ActivationCode: code, Customer: s.Customer, PlanCode: s.Order.PlanCode, Seats: s.Order.Seats, TermEnd: s.TermEnd,
		})
	if err != nil {
		return nil, err
	}
	return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: out}}, nil
}
