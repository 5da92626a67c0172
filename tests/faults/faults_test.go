package faults

import (
	"context"
	"io"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crmpush "fulfillment/functions/crm-push"
	paymentresult "fulfillment/functions/payment-result"
	"fulfillment/functions/provisioning"
	"fulfillment/infra/consistency"
	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/infra/topology"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/testsupport/testdouble"
)

// delivery is one send of a provider event (an event is sent 1 to 3 times).
type delivery struct {
	order *order
	event providerEvent
}

func TestOrdersSurviveDuplicatesReorderingCrashesAndOutages(t *testing.T) {
	n := envInt("FAULT_ORDERS", 500)
	seed := uint64(envInt("FAULT_SEED", int(time.Now().UnixNano()%1e9)))
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	runBase = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	run := strconv.FormatUint(seed, 36)
	orders := generate(rng, n, runBase, run)

	var deliveries []delivery
	events := 0
	for i := range orders {
		for _, e := range orders[i].events {
			events++
			for range 1 + rng.IntN(3) {
				deliveries = append(deliveries, delivery{&orders[i], e})
			}
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	start := time.Now()
	injectOutages(start)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chaos := startChaos(ctx, t, start)

	send(t, deliveries)
	sent := time.Since(start)
	tick(t, 2) // a tick after the last order, delivered twice

	budget := 3*time.Minute + time.Duration(n/500)*2*time.Minute
	final := waitConverged(t, orders, budget)
	converged := time.Since(start)
	cancel()
	chaos.Wait()
	settle(t)

	f := figures(t, orders, final)
	f.orders, f.events, f.deliveries, f.seed = n, events, len(deliveries), seed
	f.sent, f.converged = sent, converged
	f.parked, f.resent = strings.Count(logs.String(), `"parked until what it awaits exists"`), strings.Count(logs.String(), `"parked delivery sent again"`)
	f.print(os.Stdout)
	// go test shows a passing package's output only with -v: make test
	// prints the figures from this file instead.
	if path := os.Getenv("FAULT_REPORT"); path != "" {
		var b strings.Builder
		f.print(&b)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("fault report: %v", err)
		}
	}

	if f.lost != 0 {
		t.Errorf("orders lost: %d", f.lost)
	}
	if f.matched != f.modelled {
		t.Errorf("final states equal to the model: %d of %d; first mismatches:\n%s", f.matched, f.modelled, strings.Join(first(f.mismatches, 10), "\n"))
	}
	if f.dupProvisioning != 0 {
		t.Errorf("duplicate provisioning calls: %d", f.dupProvisioning)
	}
	if f.dupCharges != 0 {
		t.Errorf("duplicate charges: %d", f.dupCharges)
	}
	if len(f.unexpectedDead) != 0 || f.poisonDead != f.poison {
		t.Errorf("dead letters: %d of %d poison inputs, unexpected: %v", f.poisonDead, f.poison, first(f.unexpectedDead, 10))
	}
	if len(f.pubsubDead) != 0 {
		t.Errorf("Pub/Sub dead-lettered %d deliveries no consumer recorded, e.g. %v", len(f.pubsubDead), first(f.pubsubDead, 10))
	}
	if len(f.drifts) != 0 {
		t.Errorf("consistency check: %d drifts, e.g. %v", len(f.drifts), first(f.drifts, 10))
	}
	if f.kinds[declined] == 0 || f.kinds[refunded] == 0 || f.kinds[disputeLost] == 0 {
		t.Errorf("money events not injected: %v", f.kinds)
	}
	if f.crashes == 0 || f.gitlab503 == 0 || f.gitlab429 == 0 || f.sfFailed == 0 {
		t.Errorf("faults not injected: crashes %d, GitLab 503 %d, 429 %d, Salesforce failures %d", f.crashes, f.gitlab503, f.gitlab429, f.sfFailed)
	}
}

// injectOutages schedules the outside systems' bad moments: GitLab down for
// 5 s and answering 429 (Retry-After: 1) to one call in 17 throughout;
// Salesforce failing every second call for 10 s.
func injectOutages(start time.Time) {
	stack.GitLab.Reset()
	stack.Salesforce.Reset()
	stack.Stripe.Reset()
	stack.GitLab.FailWindow(start.Add(2*time.Second), 5*time.Second, http.StatusServiceUnavailable, 1)
	stack.GitLab.FailWindow(start, time.Hour, http.StatusTooManyRequests, 17)
	stack.Salesforce.FailWindow(start.Add(time.Second), 10*time.Second, http.StatusServiceUnavailable, 2)
}

// startChaos kills functions mid-flight (SIGKILL; the stack restarts them)
// and sends renewal ticks twice each, renewal being killed during one.
func startChaos(ctx context.Context, t *testing.T, start time.Time) *sync.WaitGroup {
	plan := []struct {
		at     time.Duration
		action func()
	}{
		{1500 * time.Millisecond, func() { tick(t, 2) }},
		{2 * time.Second, func() { kill(t, "renewal") }},
		{3 * time.Second, func() { kill(t, paymentresult.Name) }},
		{5 * time.Second, func() { kill(t, provisioning.Name) }},
		{7 * time.Second, func() { kill(t, crmpush.Name) }},
		{8 * time.Second, func() { tick(t, 2) }},
		{9 * time.Second, func() { kill(t, paymentresult.Name) }},
		{11 * time.Second, func() { kill(t, provisioning.Name) }},
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, step := range plan {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(step.at))):
				step.action()
			}
		}
	}()
	return &wg
}

func kill(t *testing.T, fn string) {
	if err := stack.Kill(fn); err != nil {
		t.Errorf("kill %s: %v", fn, err)
	}
}

func tick(t *testing.T, times int) {
	for range times {
		if _, err := demo.Tick(context.Background(), stack.PubSub); err != nil {
			t.Errorf("tick: %v", err)
		}
	}
}

// send posts every delivery with a few concurrent senders, retrying what
// Stripe retries (anything but 2xx, 400 and 401) until accepted.
func send(t *testing.T, deliveries []delivery) {
	t.Helper()
	url := stack.URLs["checkout-webhook"]
	work := make(chan delivery)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				deadline := time.Now().Add(time.Minute)
				for {
					resp, err := demo.SendWebhook(context.Background(), url, localstack.WebhookSecret, d.event.payload)
					if err == nil && resp.Status/100 == 2 {
						break
					}
					if err == nil && (resp.Status == 400 || resp.Status == 401) {
						refused.Add(1)
						t.Errorf("webhook refused %s: %d %s", d.event.id, resp.Status, resp.Body)
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("webhook never accepted %s: %v %v", d.event.id, resp, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for _, d := range deliveries {
		work <- d
	}
	close(work)
	wg.Wait()
}

// snapshot is what the suite reads back from Firestore and the doubles.
type snapshot struct {
	subs   map[string]subscription.Subscription
	ents   map[string]provisioning.Entitlement
	crm    map[string]crmpush.Synced
	dead   []consumer.DeadLetter
	report consistency.Report
}

func read(t *testing.T) (snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var s snapshot
	var err error
	if s.subs, err = readAll[subscription.Subscription](ctx, store.Subscriptions); err != nil {
		return s, err
	}
	if s.ents, err = readAll[provisioning.Entitlement](ctx, store.Entitlements); err != nil {
		return s, err
	}
	if s.crm, err = readAll[crmpush.Synced](ctx, store.CRMSync); err != nil {
		return s, err
	}
	dead, err := readAll[consumer.DeadLetter](ctx, store.DeadLetters)
	if err != nil {
		return s, err
	}
	for _, d := range dead {
		s.dead = append(s.dead, d)
	}
	return s, nil
}

func readAll[T any](ctx context.Context, collection string) (map[string]T, error) {
	return store.ByID[T](ctx, stack.Store, docstore.Query{Collection: collection})
}

// check compares one order with the model, in Firestore and at the targets;
// "" when it matches.
func check(o order, s snapshot) string {
	want := o.want()
	sub, found := s.subs[o.purchase.SubscriptionID()]
	switch {
	case want == nil && found:
		return fmt.Sprintf("order %d (%s): subscription exists, want none", o.n, o.kind)
	case want == nil:
		return ""
	case !found:
		return fmt.Sprintf("order %d (%s): no subscription", o.n, o.kind)
	case sub.Status != want.status || !sub.TermStart.Equal(want.termStart) || !sub.TermEnd.Equal(want.termEnd):
		return fmt.Sprintf("order %d (%s): %s %s..%s, want %s %s..%s", o.n, o.kind, sub.Status,
			sub.TermStart.Format(time.DateOnly), sub.TermEnd.Format(time.DateOnly), want.status,
			want.termStart.Format(time.DateOnly), want.termEnd.Format(time.DateOnly))
	}
	if d := consistency.Compare(sub, lookup(s.ents, sub.ID), lookup(s.crm, sub.ID)); len(d) > 0 {
		return fmt.Sprintf("order %d (%s): %v", o.n, o.kind, d)
	}
	if want.gitlab != "" {
		p, _ := stack.GitLab.Provisioned(o.purchase.NamespaceID)
		bp, _ := p["base_product"].(map[string]any)
		if bp["plan_code"] != want.gitlab || bp["end_date"] != want.termEnd.Format(time.DateOnly) {
			return fmt.Sprintf("order %d (%s): GitLab holds %v %v, want %s until %s", o.n, o.kind, bp["plan_code"], bp["end_date"], want.gitlab, want.termEnd.Format(time.DateOnly))
		}
	}
	rec, _ := stack.Salesforce.Record(crmpush.SubscriptionObject, sub.ID)
	if rec["Status__c"] != string(want.status) {
		return fmt.Sprintf("order %d (%s): Salesforce has %v, want %s", o.n, o.kind, rec["Status__c"], want.status)
	}
	return ""
}

func lookup[T any](m map[string]T, id string) *T {
	if v, ok := m[id]; ok {
		return &v
	}
	return nil
}

// waitConverged polls until every order matches the model and every poison
// input is dead-lettered, or the budget runs out; it returns the last read.
func waitConverged(t *testing.T, orders []order, budget time.Duration) snapshot {
	t.Helper()
	deadline := time.Now().Add(budget)
	for {
		s, err := read(t)
		if err == nil && converged(orders, s) {
			return s
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("reading the outcome: %v", err)
			}
			return s
		}
		time.Sleep(2 * time.Second)
	}
}

func converged(orders []order, s snapshot) bool {
	dead := deadByEvent(s.dead)
	for _, o := range orders {
		if check(o, s) != "" {
			return false
		}
		if o.poisonEventID != "" && dead[o.poisonEventID] == 0 {
			return false
		}
	}
	return true
}

func deadByEvent(dead []consumer.DeadLetter) map[string]int {
	m := map[string]int{}
	for _, d := range dead {
		m[d.EventID]++
	}
	return m
}

// settle waits until the doubles stop receiving calls (late redeliveries
// still in flight after convergence would otherwise go uncounted).
func settle(t *testing.T) {
	t.Helper()
	count := func() int {
		return len(stack.GitLab.Calls()) + len(stack.Salesforce.Calls()) + len(stack.Stripe.Calls())
	}
	last, stableSince := count(), time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Since(stableSince) < 3*time.Second && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if c := count(); c != last {
			last, stableSince = c, time.Now()
		}
	}
}

// results are the suite's printed figures.
type results struct {
	seed                           uint64
	orders, events, deliveries     int
	modelled, matched, lost        int
	mismatches                     []string
	provisioningCalls              int
	dupProvisioning                int
	charges, dupCharges            int
	poison, poisonDead             int
	unexpectedDead                 []string
	pubsubDead                     []string
	drifts                         []string
	crashes                        int
	restarts                       map[string]int
	gitlab503, gitlab429, sfFailed int
	sent, converged                time.Duration
	parked, resent                 int // deliveries parked before what they awaited; sent again
	kinds                          map[kind]int
}

func figures(t *testing.T, orders []order, s snapshot) results {
	t.Helper()
	if fresh, err := read(t); err == nil {
		s = fresh
	}
	r := results{kinds: map[kind]int{}}
	for _, o := range orders {
		r.kinds[o.kind]++
		if o.poisonEventID != "" {
			r.poison++
		}
		if o.want() == nil {
			continue
		}
		r.modelled++
		if _, found := s.subs[o.purchase.SubscriptionID()]; !found {
			r.lost++
		}
		if m := check(o, s); m == "" {
			r.matched++
		} else {
			r.mismatches = append(r.mismatches, m)
		}
	}
	poison := map[string]bool{}
	for _, o := range orders {
		if o.poisonEventID != "" {
			poison[o.poisonEventID] = true
		}
	}
	for id, n := range deadByEvent(s.dead) {
		switch {
		case poison[id] && n == 1:
			r.poisonDead++
		case poison[id]:
			r.unexpectedDead = append(r.unexpectedDead, fmt.Sprintf("%s dead-lettered %d times", id, n))
		}
	}
	for _, d := range s.dead {
		if !poison[d.EventID] {
			r.unexpectedDead = append(r.unexpectedDead, d.Consumer+": "+d.Reason)
		}
	}
	// Provisioning calls that GitLab applied, by purchase id.
	applied := map[string]int{}
	for _, c := range stack.GitLab.Provisions() {
		if c.Status/100 == 2 {
			r.provisioningCalls++
			bp, _ := c.Body["provision"].(map[string]any)["base_product"].(map[string]any)
			applied[fmt.Sprint(bp["purchase_xid"])]++
		}
	}
	namespaceOf := map[string]string{}
	for _, o := range orders {
		namespaceOf[o.purchase.SessionID] = o.purchase.NamespaceID
	}
	for xid, n := range applied {
		r.dupProvisioning += n - 1
		if n > 1 { // show the namespace's calls to make a failure readable
			ns := namespaceOf[xid[:strings.LastIndex(xid, "-v")]]
			for _, c := range stack.GitLab.Calls() {
				if strings.Contains(c.Path, "/"+ns+"/") {
					t.Logf("GitLab call for %s: %s %s %s -> %d", xid, c.Time.Format("15:04:05.000"), c.Method, c.Path, c.Status)
				}
			}
		}
	}
	// Charges Stripe executed (not replayed from its idempotency store), by key.
	executed := map[string]int{}
	for _, c := range stack.Stripe.Calls() {
		key := c.Headers["Idempotency-Key"]
		if c.Method == http.MethodPost && strings.HasSuffix(key, "-pay") && c.Status/100 == 2 && !c.Replayed {
			executed[key]++
			r.charges++
		}
	}
	for _, n := range executed {
		r.dupCharges += n - 1
	}
	r.pubsubDead = pubsubDeadLetters(t)
	report, err := consistency.Check(context.Background(), stack.Store)
	if err != nil {
		t.Errorf("consistency check: %v", err)
	}
	for _, d := range report.Drifts {
		r.drifts = append(r.drifts, d.String())
	}
	r.restarts = map[string]int{}
	for _, fn := range localstack.Functions {
		r.restarts[fn] = stack.Restarts(fn)
		r.crashes += r.restarts[fn]
	}
	for _, c := range stack.GitLab.Calls() {
		switch c.Status {
		case http.StatusServiceUnavailable:
			r.gitlab503++
		case http.StatusTooManyRequests:
			r.gitlab429++
		}
	}
	_, r.sfFailed = testdouble.Answered(stack.Salesforce.Calls())
	return r
}

func (r results) print(w io.Writer) {
	fns := make([]string, 0, len(r.restarts))
	for fn, n := range r.restarts {
		if n > 0 {
			fns = append(fns, fmt.Sprintf("%s %d", fn, n))
		}
	}
	sort.Strings(fns)
	pct := 100.0
	if r.modelled > 0 {
		pct = 100 * float64(r.matched) / float64(r.modelled)
	}
	fmt.Fprintf(w, `
fault-injection suite (seed %d)
  orders                         %d (%d provider events, %d webhook deliveries, each event 1-3 times, shuffled, 12 senders)
  faults                         %d function restarts (%s); GitLab 503 x%d, 429 x%d; Salesforce failures x%d
  money events                   %d declined checkouts, %d refunds in whole, %d in part, %d disputes won, %d lost
  orders lost                    %d
  final states equal to model    %d / %d (%.1f%%)
  duplicate provisioning calls   %d (of %d applied, by purchase id)
  duplicate charges              %d (of %d executed, by idempotency key)
  dead letters                   %d for %d poison inputs; unexpected %d; dead-lettered by Pub/Sub unrecorded %d
  parked before their purchase   %d, sent again %d
  consistency drifts             %d
  all webhooks accepted after    %s
  converged after                %s
`, r.seed, r.orders, r.events, r.deliveries, r.crashes, strings.Join(fns, ", "), r.gitlab503, r.gitlab429, r.sfFailed,
		r.kinds[declined], r.kinds[refunded], r.kinds[partRefunded], r.kinds[disputeWon], r.kinds[disputeLost], r.lost, r.matched, r.modelled, pct, r.dupProvisioning, r.provisioningCalls, r.dupCharges, r.charges,
		r.poisonDead, r.poison, len(r.unexpectedDead), len(r.pubsubDead), r.parked, r.resent, len(r.drifts), r.sent.Round(time.Millisecond), r.converged.Round(time.Millisecond))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// pubsubDeadLetters drains the dead-letter topics' pull subscriptions: what
// Pub/Sub gave up on, recorded or not. It returns those with no record.
func pubsubDeadLetters(t *testing.T) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recorded, err := readAll[consumer.DeadLetter](ctx, store.DeadLetters)
	if err != nil {
		t.Errorf("dead letters: %v", err)
	}
	byID := map[string]bool{}
	for _, d := range recorded {
		byID[d.EventID] = true
	}
	var out []string
	for _, fn := range localstack.Functions[1:] {
		name := fmt.Sprintf("projects/%s/subscriptions/%s", stack.Project, topology.DeadLetterTopic(fn))
		for {
			resp, err := stack.PubSub.Raw().SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: name, MaxMessages: 1000})
			if err != nil || len(resp.ReceivedMessages) == 0 {
				break
			}
			var acks []string
			for _, m := range resp.ReceivedMessages {
				acks = append(acks, m.AckId)
				id := m.Message.Attributes["ce-id"]
				if !byID[id] {
					out = append(out, fmt.Sprintf("%s: %s (%s)", fn, id, m.Message.Attributes["ce-type"]))
				}
			}
			_ = stack.PubSub.Raw().SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: name, AckIds: acks})
		}
	}
	return out
}
