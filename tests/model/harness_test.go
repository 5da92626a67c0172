package model

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"pgregory.net/rapid"

	"fulfillment/functions/checkout"
	"fulfillment/functions/licensing"
	paymentresult "fulfillment/functions/payment-result"
	"fulfillment/functions/provisioning"
	"fulfillment/functions/renewal"
	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/memory"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
)

// maxDeliveryAttempts is the topology's max_delivery_attempts.
const maxDeliveryAttempts = 10

// seatKey signs the seat reports (seat-usage's bearer tokens).
var seatKey = []byte("model-seat-usage-key")

// modelClock is the one clock of a journey; every function reads it.
type modelClock struct{ t time.Time }

func (c *modelClock) Now() time.Time { return c.t }

// envelope is one message on a topic, with its delivery attempts so far.
type envelope struct {
	topic    string
	e        event.Event
	attempts int
	// drains it is still held back for (late deliveries)
	held int
}

// bus stands in for Pub/Sub: what is published is queued and delivered by
// drain to the function subscribed to the topic. With chaos on, drain
// delivers some messages twice and holds some back until the next drain
// (late and out of order); a failed delivery is redelivered, up to the
// topology's max attempts.
type bus struct {
	queue, late  []envelope
	published    func(topic string, e event.Event) // sees every event published
	chaos        bool
	deliveries   int
	undelivered  int // transient failures past max attempts
	deadLettered int // messages published on a dead-letter topic
}

// Publish queues events on topic (pubsub.Publisher).
func (b *bus) Publish(_ context.Context, topic string, events ...event.Event) error {
	for _, e := range events {
		b.queue = append(b.queue, envelope{topic: topic, e: e})
		if b.published != nil {
			b.published(topic, e)
		}
	}
	return nil
}

// quiet says nothing is held back for a later delivery.
func (b *bus) quiet() bool { return len(b.late) == 0 && len(b.queue) == 0 }

// harness is one journey's system: the real handlers on one store.
type harness struct {
	t      *rapid.T
	ctx    context.Context
	st     *store.Store
	clock  *modelClock
	bus    *bus
	pay    *provider
	gl     *gitlabFake
	policy subscription.Policy
	// licenseKey signs licenses (provisioning's and licensing's key).
	licenseKey ed25519.PrivateKey

	pr    *paymentresult.Function
	prov  *provisioning.Function
	lic   *licensing.Function
	ren   *renewal.Function
	seats *seatusage.Function
	co    *checkout.Function
	log   *slog.Logger

	seq  int
	subs []*modelSub
	// commands are the change commands sent, by id (their charge key is "change-<id>").
	commands map[string]sentCommand
	// lastTickAt is when the scheduler last ticked; outageEnd when the last
	// scheduler outage (a clock jump without ticks) ended.
	lastTickAt, outageEnd time.Time
	// violations found while a handler ran (at charge time), by invariant.
	pending map[string][]string
	// grantedCents is the price of what GitLab held, integrated over time.
	grantedCents float64
	// overdue and graceEnded count what the strict-sync checks did.
	overdue, graceEnded int
	// view caches the subscriptions during one check.
	view map[string]*subscription.Subscription
	// trials are the trials started, by namespace; lastTrialTickAt is when
	// the trial tick last ran, and what it converted and ended so far.
	trials                       map[string]*modelTrial
	lastTrialTickAt              time.Time
	trialsConverted, trialsEnded int
}

// modelSub is what the journey knows of one subscription.
type modelSub struct {
	id, ns, customer string
	order            catalog.Order
	autoRenew        bool // as last confirmed by a delivered command
	// reports are the seat reports sent: date -> users.
	reports map[time.Time]int
	// autoRenewOnAt is when the customer's last command turning auto-renew on was applied.
	autoRenewOnAt time.Time
	// inst is the GitLab instance of a self-managed subscription (nil for SaaS).
	inst *instance
}

type sentCommand struct {
	typ string
	cmd catalog.Command
	at  time.Time
}

func newHarness(t *rapid.T, start time.Time) *harness {
	h := &harness{
		t: t, ctx: context.Background(), st: store.New(memory.New()), clock: &modelClock{t: start},
		bus: &bus{}, gl: &gitlabFake{ns: map[string]*glState{}}, policy: subscription.DefaultPolicy(),
		view: map[string]*subscription.Subscription{}, commands: map[string]sentCommand{}, pending: map[string][]string{},
		trials: map[string]*modelTrial{},
	}
	h.pay = newProvider(h)
	h.bus.published = h.published
	h.licenseKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pepper := []byte("model-code-pepper")
	log := slog.New(slog.DiscardHandler)
	h.log = log
	h.pr = paymentresult.New(paymentresult.Deps{Store: h.st, Publisher: h.bus, DeadLetterTopic: "payment-result-dead-letter", Logger: log})
	h.prov = provisioning.New(provisioning.Deps{
		Store: h.st, Publisher: h.bus, GitLab: h.gl, LicenseKey: h.licenseKey, CodePepper: pepper,
		DeadLetterTopic: "provisioning-dead-letter", Logger: log,
	})
	h.lic = licensing.New(licensing.Deps{Store: h.st, Publisher: h.bus, SigningKey: h.licenseKey, CodePepper: pepper,
		DeadLetterTopic: "licensing-dead-letter", Clock: h.clock, Logger: log})
	h.ren = renewal.New(renewal.Deps{
		Store: h.st, Publisher: h.bus, Billing: h.pay, Policy: h.policy, Clock: h.clock,
		DeadLetterTopic: "renewal-dead-letter", Logger: log,
	})
	h.seats = seatusage.New(seatusage.Deps{Store: h.st, TokenKey: seatKey, Clock: h.clock, Logger: log})
	h.co = newCheckout(h)
	return h
}

func (h *harness) nextID(prefix string) string {
	h.seq++
	return fmt.Sprintf("%s%d", prefix, h.seq)
}

func (h *harness) now() time.Time { return h.clock.t }

// violate records a violation found outside a check (while a handler ran).
func (h *harness) violate(invariant, format string, args ...any) {
	h.pending[invariant] = append(h.pending[invariant], fmt.Sprintf(format, args...))
}

// deliver hands one message to the consumer of its topic (the topology:
// provider-events -> payment-result, subscription-events -> provisioning,
// renewal-ticks -> renewal; provisioning-events and the dead-letter topics
// have no push consumer).
func (h *harness) deliver(env envelope) error {
	switch env.topic {
	case catalog.TopicProviderEvents:
		return h.pr.Handle(h.ctx, env.e)
	case catalog.TopicSubscriptionEvents:
		return h.prov.Handle(h.ctx, env.e)
	case catalog.TopicRenewalTicks:
		err := h.ren.Handle(h.ctx, env.e)
		if err == nil && env.e.Type() == catalog.CommandSetAutoRenew {
			h.autoRenewDelivered(env.e)
		}
		return err
	case catalog.TopicProvisioningEvents:
		return nil
	default:
		h.bus.deadLettered++
		return nil
	}
}

// drain delivers everything queued, and what earlier drains held back
// and is due now (after the new messages: out of order), until the bus is
// empty. A message held back for more than one drain lets a newer version
// of its subscription arrive first (Pub/Sub retrying a push with backoff
// while the next event goes through).
func (h *harness) drain() {
	b := h.bus
	var still []envelope
	for _, env := range b.late {
		if env.held--; env.held > 0 {
			still = append(still, env)
		} else {
			b.queue = append(b.queue, env)
		}
	}
	b.late = still
	for n := 0; len(b.queue) > 0; n++ {
		if n > 20000 {
			h.t.Fatalf("bus: more than 20000 deliveries in one step (a delivery loop)")
		}
		env := b.queue[0]
		b.queue = b.queue[1:]
		if b.chaos && env.attempts == 0 {
			switch rapid.IntRange(0, 9).Draw(h.t, "bus") {
			case 8: // late: one to three drains later, after newer messages
				env.held = rapid.IntRange(1, 3).Draw(h.t, "drains late")
				b.late = append(b.late, env)
				continue
			case 9: // twice
				b.queue = append(b.queue, env)
			}
		}
		b.deliveries++
		if err := h.deliver(env); err != nil {
			env.attempts++
			if env.attempts < maxDeliveryAttempts {
				b.queue = append(b.queue, env)
			} else {
				b.undelivered++
			}
		}
	}
}

// drainAll delivers what is held back too, due or not, and the rest.
func (h *harness) drainAll() {
	for i := range h.bus.late {
		h.bus.late[i].held = 1
	}
	h.drain()
}

// publish puts events on a topic and drains the bus.
func (h *harness) publish(topic string, events ...event.Event) {
	_ = h.bus.Publish(h.ctx, topic, events...)
	h.drain()
}

func (h *harness) sub(id string) *subscription.Subscription {
	s, err := h.st.Subscription(h.ctx, nil, id)
	if err != nil {
		if store.IsNotFound(err) {
			return nil
		}
		h.t.Fatalf("read subscription %s: %v", id, err)
	}
	return s
}

// viewSub is sub as read once per check (the invariants read it often).
func (h *harness) viewSub(id string) *subscription.Subscription {
	if s, ok := h.view[id]; ok {
		return s
	}
	s := h.sub(id)
	h.view[id] = s
	return s
}

func (h *harness) modelSub(id string) *modelSub {
	for _, m := range h.subs {
		if m.id == id {
			return m
		}
	}
	return nil
}

// autoRenewDelivered records the customer's auto-renew setting once the
// command that changed it was applied.
func (h *harness) autoRenewDelivered(e event.Event) {
	var cmd catalog.Command
	if err := e.DataAs(&cmd); err != nil {
		return
	}
	m, s := h.modelSub(cmd.SubscriptionID), h.sub(cmd.SubscriptionID)
	if m != nil && s != nil {
		m.autoRenew = s.Order.AutoRenew
		if cmd.AutoRenew && e.Source() == catalog.SourceOperator {
			m.autoRenewOnAt = h.now()
		}
	}
}

// gitlabFake is GitLab's provisioning API in process: Provision replaces the
// base product, and sets storage and compute minutes when their hash is sent
// (an omitted hash leaves them unchanged); Current returns what was last
// provisioned.
type gitlabFake struct {
	ns    map[string]*glState
	calls int
}

type glState struct {
	base          gitlab.BaseProduct
	storageMiB    int
	storageEndsOn string
	compute       int
}

func (g *gitlabFake) Provision(_ context.Context, namespaceID string, req gitlab.ProvisionRequest) error {
	g.calls++
	s := g.ns[namespaceID]
	if s == nil {
		s = &glState{}
		g.ns[namespaceID] = s
	}
	s.base = req.BaseProduct
	// A storage or compute-minutes hash sent sets the amount, 0 clearing
	// it; only an omitted hash leaves GitLab's value in place. (The fake
	// first read a sent 0 as "leave unchanged", which kept revoked packs
	// granted after expiry although provisioning clears them.)
	if req.Storage != nil {
		s.storageMiB, s.storageEndsOn = req.Storage.AdditionalPurchasedStorageSize, req.Storage.AdditionalPurchasedStorageEndsOn
	}
	if req.ComputeMinutes != nil {
		s.compute = req.ComputeMinutes.ExtraSharedRunnersMinutesLimit
	}
	return nil
}

func (g *gitlabFake) Current(_ context.Context, namespaceID string) (gitlab.Current, bool, error) {
	s := g.ns[namespaceID]
	if s == nil {
		return gitlab.Current{}, false, nil
	}
	b := s.base
	// Storage and compute minutes too, as GitLab's namespace endpoint
	// returns them: provisioning compares them before calling (the fake
	// first left them out, so a pack taken back looked held already).
	return gitlab.Current{PlanCode: b.PlanCode, Seats: b.Seats, MaxSeatsUsed: b.MaxSeatsUsed, StartDate: b.StartDate,
		EndDate: b.EndDate, AutoRenew: b.AutoRenew, Trial: b.Trial,
		AdditionalPurchasedStorageSize: s.storageMiB, AdditionalPurchasedStorageEndsOn: s.storageEndsOn,
		ExtraSharedRunnersMinutesLimit: s.compute}, true, nil
}

// grant is what GitLab gives a namespace now: paid features or nothing.
type grant struct {
	plan             string
	seats            int
	storageGB        int
	computeMinutes   int
	anythingGranted  bool
	provisionedAtAll bool
}

func (g *gitlabFake) grant(ns string) grant {
	s := g.ns[ns]
	if s == nil {
		return grant{}
	}
	gr := grant{plan: s.base.PlanCode, seats: s.base.Seats, storageGB: (s.storageMiB + 1023) / 1024, computeMinutes: s.compute, provisionedAtAll: true}
	gr.anythingGranted = (gr.plan != "" && gr.plan != "free") || gr.seats > 0 || gr.storageGB > 0 || gr.computeMinutes > 0
	return gr
}
