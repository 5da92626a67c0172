package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"fulfillment/shared/adapters/docstore"
	"net/http"
	"testing"
	"time"

	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
)

var jsonUnmarshal = json.Unmarshal

// post sends payload with an explicit Stripe-Signature header.
func post(t *testing.T, payload []byte, signature string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, stack.URLs["checkout-webhook"], bytes.NewReader(payload))
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func storedWebhook(id string) (map[string]any, bool) {
	var rec map[string]any
	err := stack.Store.Get(background, nil, store.WebhookEvents, id, &rec)
	return rec, err == nil
}

func TestRejectedWebhooksStoreNothing(t *testing.T) {
	p := purchase(t)
	tests := []struct {
		name      string
		signature func(payload []byte) string
	}{
		{"missing signature", func([]byte) string { return "" }},
		{"wrong secret", func(b []byte) string { return stripe.Sign(b, time.Now(), "whsec_wrong") }},
		{"expired timestamp", func(b []byte) string {
			return stripe.Sign(b, time.Now().Add(-10*time.Minute), localstack.WebhookSecret)
		}},
		{"garbage header", func([]byte) string { return "t=abc,v1=zz" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uniq("evt")
			payload := p.CheckoutCompleted(id, time.Now())
			if code, body := post(t, payload, tt.signature(payload)); code != http.StatusUnauthorized {
				t.Fatalf("answered %d %s, want 401", code, body)
			}
			if _, ok := storedWebhook(id); ok {
				t.Fatal("a rejected webhook was stored")
			}
		})
	}
}

func TestSeveralSignaturesAnyValidIsAccepted(t *testing.T) {
	p := purchase(t)
	payload := p.CheckoutCompleted(uniq("evt"), time.Now())
	header := stripe.Sign(payload, time.Now(), "whsec_old_rotated_out", localstack.WebhookSecret)
	if code, body := post(t, payload, header); code != http.StatusOK {
		t.Fatalf("answered %d %s", code, body)
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300<<10)
	code, _ := post(t, big, stripe.Sign(big, time.Now(), localstack.WebhookSecret))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("answered %d, want 413", code)
	}
}

func TestMalformedJSONIs400(t *testing.T) {
	for _, payload := range [][]byte{[]byte(`{"id": "evt_1", "type":`), []byte(`{"object":"event"}`)} {
		code, body := post(t, payload, stripe.Sign(payload, time.Now(), localstack.WebhookSecret))
		if code != http.StatusBadRequest {
			t.Fatalf("%s: answered %d %s, want 400", payload, code, body)
		}
	}
}

func TestUnknownEventTypeIsRecordedAndIgnored(t *testing.T) {
	id := uniq("evt")
	payload := stripe.NewEvent(id, "customer.tax_id.created", time.Now(), map[string]any{"id": "txi_1", "object": "tax_id"})
	if r := send(t, payload); r.Status != 200 || r.Body != `{"status":"ignored"}` {
		t.Fatalf("answered %d %s", r.Status, r.Body)
	}
	rec, ok := storedWebhook(id)
	if !ok || rec["status"] != "ignored" || rec["stripe_type"] != "customer.tax_id.created" {
		t.Fatalf("record %v", rec)
	}
}

func TestUnknownPlanIsRecordedAndDeadLetteredOnce(t *testing.T) {
	p := purchase(t)
	p.Plan = "platinum"
	id := uniq("evt")
	mustAccept(t, p.CheckoutCompleted(id, time.Now()))

	var dl struct {
		Consumer string `firestore:"consumer"`
		EventID  string `firestore:"event_id"`
		Reason   string `firestore:"reason"`
	}
	eventually(t, 20*time.Second, "dead letter recorded", func() (bool, string) {
		docs, err := stack.Store.DB.Query(background, docstore.Query{Collection: store.DeadLetters, Where: []docstore.Filter{{Field: "event_id", Op: docstore.Eq, Value: id}}})
		if err != nil || len(docs) != 1 {
			return false, fmt.Sprint(len(docs), err)
		}
		return docs[0].DataTo(&dl) == nil, ""
	})
	if dl.Consumer != "payment-result" || !bytes.Contains([]byte(dl.Reason), []byte(`unknown plan "platinum"`)) {
		t.Fatalf("dead letter %+v", dl)
	}
	// It reached the dead-letter topic, and was acknowledged: not retried.
	ctx, cancel := ctxTimeout(20 * time.Second)
	defer cancel()
	found := 0
	sub := stack.PubSub.Raw().Subscriber("payment-result-dead-letter")
	rctx, stop := ctxTimeout(20 * time.Second)
	defer stop()
	_ = ctx
	_ = sub.Receive(rctx, func(_ ctxT, m *msgT) {
		m.Ack()
		if m.Attributes["ce-id"] == id {
			found++
			stop()
		}
	})
	if found != 1 {
		t.Fatalf("dead-letter topic carried the event %d times, want 1", found)
	}
	if _, err := stack.Store.Subscription(background, nil, p.SubscriptionID()); !store.IsNotFound(err) {
		t.Fatalf("a subscription exists for an unknown plan: %v", err)
	}
	if n := len(callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))); n != 0 {
		t.Fatalf("%d provisioning calls for an unknown plan", n)
	}
}
