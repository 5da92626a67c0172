// Package model is the model-based test of money and access: random
// customer journeys (pgregory.net/rapid state machines) driven through the
// real handlers of payment-result, renewal, provisioning, seat-usage,
// licensing and checkout's trials, on one shared in-memory store, with an in-process payment
// provider and GitLab, self-managed GitLab instances that speak to
// licensing's HTTP handler in GitLab's wire formats, and a Pub/Sub bus that
// delivers what the functions publish to the function subscribed to each
// topic (infra/topology/topology.yaml). After every step the invariants of
// DESIGN.md rules 9-11 are checked.
//
// Run it with `make model JOURNEYS=N`, or
//
//	MODEL_JOURNEYS=10000 MODEL_INVARIANTS=all MODEL_REPORT=figures.txt go test ./tests/model/ -run TestModel -count=1
//
// MODEL_INVARIANTS is "all" (the default), "none", or a comma list of the
// invariant names: only those fail the test; every invariant is still
// evaluated and counted in the figures.
//
// # Commands
//
// A journey starts with a purchase and runs up to 15 commands, each with
// its own chaos (Pub/Sub deliveries late by one to three drains, twice or
// out of order; webhooks held back, delivered twice, reordered or lost;
// payment calls paid, declined or timing out either way; instances going
// offline for some steps):
//   - Purchase: a paid checkout (up to three subscriptions), one in three
//     for a self-managed instance, and some on a namespace whose
//     subscription ended (canceled or expired; checkout allows it then);
//   - SeatReport: a seat-usage report, sometimes dated days back; for an
//     activated instance online, a seat link with its user count;
//   - AddSeats, Upgrade, AddPack: mid-term purchases, quoted and charged,
//     granted when paid; Downgrade (at the term end) and AutoRenew;
//   - Advance: the clock moves, the scheduler ticking at each due review or
//     down for the jump (an outage); Review: a tick or one renewal-due event.
//     Every tick, and the end of a jump with the scheduler up, runs
//     licensing's strict-sync check (POST /tasks/sync-check) too;
//   - Refund: part or the rest of a paid charge, refunded at the provider
//     (charge.refunded naming its payment intent);
//   - Dispute: a dispute opened on a paid charge, or an open one closed as
//     won or lost (charge.dispute.created / charge.dispute.closed);
//   - Void: an unpaid invoice voided at the provider (invoice.voided);
//   - StartTrial: POST /trials for the namespace the next purchase will be
//     for, or for one of the journey's subscriptions' (refused while it
//     runs). Every tick, and the end of a jump with the scheduler up, runs
//     the trial tick (POST /trials/tick) too.
//
// After every step each self-managed instance that is online activates
// (GitLab's cloudActivationActivate mutation, with the code provisioning
// announced) or, once activated, syncs with a seat link carrying no user
// count, and keeps the license the answer brings.
//
// The provider's webhooks are the Stripe events checkout-webhook would
// publish (stripe.NewEvent, stripe.ParseEvent, stripe.Normalize); its
// invoice.paid and checkout carry the payment intent, which payment-result
// indexes so that refunds and disputes find their ledger line (renewal
// indexes a payment it found paid by asking Stripe). Refunds and disputes
// are issued only on payments the system has recorded paid.
//
// # Invariants
//
// What GitLab grants is a namespace's plan and packs on GitLab.com (judged
// for the namespace's newest subscription: it is what the namespace was
// bought for last), or for a
// self-managed subscription the license licensing served its instance at
// the step's end (not judged when the instance was offline: it keeps what
// it had, as GitLab does, until the license expires).
//
//   - granted_only_paid (rule 9): what GitLab grants and an active or
//     dunning status are backed by a paid term covering now (a renewal
//     counts from its payment) or by the last one within the documented
//     grace; added seats, upgrades and packs count once paid, a true-up's
//     seats once invoiced; nothing a charge refunded in whole or lost in a
//     dispute bought counts once its webhook was delivered.
//   - no_charge_after_end (rule 11): no payment attempt after the
//     subscription ended, no renewal payment after auto-renew was turned off.
//   - charge_equals_price (rule 10): every charge is the catalog price of
//     what it buys, in usd, and a key is never reused for other parameters.
//   - no_seat_billed_twice: true-ups bill only seats used beyond those
//     bought (base and paid additions before the last true-up); while the
//     subscription runs, the seats billed for its term are held (seats
//     whose charge is unanswered count as held).
//   - charge_recorded (rule 10): every charge the provider made has a
//     ledger line with its invoice id; a paid one is recorded paid (or
//     refunded, disputed) within answerWait, even when its webhook was lost.
//   - converges (rule 11): past a term's end plus the dunning schedule and
//     Stripe's webhook retries, every subscription is renewed or ended.
//   - paid_not_revoked (rule 9): while a paid term covers now the
//     subscription is not suspended or ended and GitLab does not hold the
//     free plan for it (nor a suspended or revoked license), unless the
//     charge that paid the current term was refunded in whole or lost (the
//     documented policy then cancels).
//   - one_code_while_running (rule 9): provisioning announces at most one
//     activation code per self-managed subscription, and only while the
//     entitlement it applied last is a running one (judged when the code
//     is published).
//   - trial_bounded (rule 9, docs/checkout.md): GitLab holds a trial's plan
//     only while its trial runs (not once converted or ended, not after a
//     tick at or past its end) and never over a subscription of the
//     namespace active on a paid term; while the trial runs, before its end,
//     with no subscription running there, GitLab holds the trial's plan (a
//     purchase refunded or ended during it gives the trial back); a trial is
//     granted exactly when the namespace had none and runs no subscription.
//     A trial's plan is judged here, not by granted_only_paid.
//   - silent_not_renewed (strict cloud licensing, docs/licensing.md): an
//     activated instance silent for the overdue and grace days (37) has its
//     subscription's auto-renewal off a day later (counted from the end of
//     a scheduler outage), unless the customer turned it on again after.
//
// The figures report money billed, granted (the price of what GitLab held,
// over time) and refunded, payment attempts, the self-managed instances'
// activations, seat links and licenses, what the strict-sync checks did,
// the trials started, converted and ended, the namespaces bought again,
// and per invariant the number
// of journeys violating it.
package model
