package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	checkoutwebhook "fulfillment/functions/checkout-webhook"
	"fulfillment/infra/localstack/tracing"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/testsupport/testdouble"
)

// purchasePath is every function a paid SaaS purchase passes through.
var purchasePath = []string{"checkout-webhook", "payment-result", "provisioning", "crm-push"}

// TestOnePurchaseIsOneTraceAcrossEveryFunction follows a purchase by the
// trace the webhook started: every function on its path logs that trace id,
// the calls to GitLab and Salesforce carry it in their traceparent header,
// and the spans the functions export form one tree rooted at the webhook.
func TestOnePurchaseIsOneTraceAcrossEveryFunction(t *testing.T) {
	p := purchase(t)
	evt := uniq("evt")
	mustAccept(t, p.CheckoutCompleted(evt, time.Now()))
	waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	var rec checkoutwebhook.Record
	if err := stack.Store.Get(background, nil, store.WebhookEvents, evt, &rec); err != nil {
		t.Fatal(err)
	}
	traceID := logging.TraceID(rec.TraceParent)
	if traceID == "" {
		t.Fatalf("webhook stored no trace with the event: %q", rec.TraceParent)
	}

	eventually(t, 20*time.Second, "trace "+traceID+" in the logs of "+strings.Join(purchasePath, ", "), func() (bool, string) {
		missing := missingFrom(functionsThatLogged(traceID), purchasePath)
		return len(missing) == 0, fmt.Sprint("missing ", missing)
	})

	eventually(t, 20*time.Second, "GitLab and Salesforce called within the trace", func() (bool, string) {
		gl := callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))
		sf := callsTo(stack.Salesforce.Calls(), p.SubscriptionID())
		ok := len(gl) > 0 && len(sf) > 0 &&
			logging.TraceID(gl[0].Headers["Traceparent"]) == traceID && logging.TraceID(sf[0].Headers["Traceparent"]) == traceID
		return ok, fmt.Sprintf("gitlab %v, salesforce %v", headers(gl), headers(sf))
	})

	// Spans arrive in batches, children before their parents: wait for the whole tree.
	eventually(t, 20*time.Second, "one span tree across every function on the path, rooted at the webhook", func() (bool, string) {
		spans := stack.Traces.Trace(traceID)
		missing := missingFrom(tracing.Services(spans), purchasePath)
		roots := tracing.Roots(spans)
		if len(missing) == 0 && len(roots) == 1 && roots[0].Service == "checkout-webhook" && roots[0].Kind == "server" {
			return true, ""
		}
		var tree strings.Builder
		tracing.Render(&tree, spans, true)
		return false, fmt.Sprintf("services missing %v, %d roots:\n%s", missing, len(roots), tree.String())
	})
	if testing.Verbose() {
		var tree strings.Builder
		tracing.Render(&tree, stack.Traces.Trace(traceID), false)
		t.Log("\n" + tree.String())
	}
}

// functionsThatLogged lists the functions with a log line in traceID.
func functionsThatLogged(traceID string) []string {
	var fns []string
	sc := bufio.NewScanner(strings.NewReader(stackLogs.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Function string `json:"function"`
			Trace    string `json:"logging.googleapis.com/trace"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Function == "" {
			continue // an emulator's or double's line, or another process's line cut in two
		}
		if (line.Trace == traceID || strings.HasSuffix(line.Trace, "/traces/"+traceID)) && !slices.Contains(fns, line.Function) {
			fns = append(fns, line.Function)
		}
	}
	return fns
}

func missingFrom(have, want []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

func headers(calls []testdouble.Call) []map[string]string {
	out := make([]map[string]string, len(calls))
	for i, c := range calls {
		out[i] = c.Headers
	}
	return out
}
