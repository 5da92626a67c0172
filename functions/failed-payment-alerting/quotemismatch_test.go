package failedpaymentalerting

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
)

// A checkout refused against its quote pages at once, once.
func TestAQuoteMismatchPagesOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	m := catalog.QuoteMismatch{QuoteID: "q_1", CheckoutSessionID: "cs_low", Reason: "amount_mismatch", ExpectedCents: 174000, PaidCents: 100, Currency: "usd"}
	in, err := cloudevent.New(context.Background(), "evt_low/mismatch", catalog.SourcePaymentResult, catalog.CheckoutQuoteMismatch, "cs_low", m)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := fx.f.Handle(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	slack, pd := fx.slack.Calls(), fx.pd.Calls()
	if len(slack) != 1 || len(pd) != 1 {
		t.Fatalf("%d Slack and %d PagerDuty calls, want one each", len(slack), len(pd))
	}
	if body := fmt.Sprint(pd[0].Body); !strings.Contains(body, "cs_low") || !strings.Contains(body, "amount_mismatch") {
		t.Fatalf("PagerDuty got %s", pd[0].Body)
	}
}
