package topology

import (
	"testing"

	"fulfillment/shared/runtime/consumer"
)

func TestEverySubscribingFunctionHasATopicThatExists(t *testing.T) {
	top, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	topics := map[string]bool{}
	for _, name := range top.Topics {
		topics[name] = true
	}
	want := []string{"crm-push", "failed-payment-alerting", "notifications", "payment-result", "provisioning", "renewal"}
	got := top.Subscribers()
	if len(got) != len(want) {
		t.Fatalf("subscribers = %v, want %v", got, want)
	}
	for i, fn := range want {
		if got[i] != fn {
			t.Fatalf("subscribers = %v, want %v", got, want)
		}
		if !topics[top.Functions[fn].Topic] {
			t.Errorf("%s subscribes to unknown topic %q", fn, top.Functions[fn].Topic)
		}
	}
	if top.Functions["checkout-webhook"].Trigger != "http" {
		t.Error("checkout-webhook must be the HTTP entry")
	}
	if d := top.Delivery; d.MaxDeliveryAttempts < 5 || d.MinimumBackoff <= 0 || d.MaximumBackoff < d.MinimumBackoff {
		t.Errorf("delivery policy %+v cannot retry and dead-letter", d)
	}
}

// The consumers count failed deliveries against the same limit Pub/Sub
// dead-letters at: the last attempt is where they record the dead letter.
func TestConsumersKnowTheMaxDeliveryAttempts(t *testing.T) {
	top, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if int(top.Delivery.MaxDeliveryAttempts) != consumer.DefaultMaxDeliveryAttempts {
		t.Fatalf("topology max_delivery_attempts %d, consumer.DefaultMaxDeliveryAttempts %d", top.Delivery.MaxDeliveryAttempts, consumer.DefaultMaxDeliveryAttempts)
	}
}
