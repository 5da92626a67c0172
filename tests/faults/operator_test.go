package faults

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fulfillment/functions/provisioning"
	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/testdouble"
)

// The operator's loop, with the real CLI against the running stack: GitLab
// refuses a provisioning, the delivery is dead-lettered and the consistency
// check shows the drift; a replay after GitLab is fixed clears both.
func TestOperatorListsReplaysAndChecksConsistency(t *testing.T) {
	ctl := buildCLI(t)
	stack.GitLab.Reset()
	stack.GitLab.FailNext(1, http.StatusBadRequest)
	p := demo.Purchase{SessionID: "cs_op_" + fmt.Sprint(time.Now().UnixNano()), CustomerID: "cus_op", Email: "operator.case@customer.example",
		Plan: "premium", Seats: 3, NamespaceID: "ns_op", AutoRenew: true, Paid: true}
	resp, err := demo.SendWebhook(t.Context(), stack.URLs["checkout-webhook"], localstack.WebhookSecret, p.CheckoutCompleted("evt_op_"+p.SessionID, time.Now()))
	if err != nil || resp.Status != 200 {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	sub := p.SubscriptionID()
	poll(t, "provisioning failure recorded", func() bool {
		var e struct {
			Status provisioning.EntitlementStatus `firestore:"status"`
		}
		return stack.Store.Get(t.Context(), nil, store.Entitlements, sub, &e) == nil && e.Status == provisioning.EntitlementFailed
	})

	out, err := ctl("dead-letters", "-sub", "provisioning")
	if err != nil || !strings.Contains(out, "provisioning (1)") || !strings.Contains(out, "400") {
		t.Fatalf("dead-letters: %v\n%s", err, out)
	}
	id := strings.Fields(out[strings.Index(out, "REASON")+len("REASON"):])[0]
	if out, err := ctl("dead-letter", id); err != nil || !strings.Contains(out, sub) {
		t.Fatalf("dead-letter %s: %v\n%s", id, err, out)
	}
	out, err = ctl("consistency")
	if err == nil || !strings.Contains(out, sub) || !strings.Contains(out, "failed") {
		t.Fatalf("consistency did not report the drift: %v\n%s", err, out)
	}

	out, err = ctl("replay", "-all", "-sub", "provisioning")
	if err != nil || !strings.Contains(out, "replayed 1 dead letters") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	poll(t, "consistency clean after the replay", func() bool {
		out, err = ctl("consistency")
		return err == nil
	})
	if out, err := ctl("dead-letters", "-sub", "provisioning"); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dead letters left after the replay: %v\n%s", err, out)
	}
	if ok, refused := testdouble.Answered(stack.GitLab.Provisions()); ok != 1 || refused != 1 {
		t.Fatalf("GitLab provisioned %d times (%d refused) after the replay, want the refusal and one provisioning", ok, refused)
	}
	t.Logf("consistency after the replay:\n%s", out)
}

// buildCLI builds fulfillctl and returns a runner pointed at the stack.
func buildCLI(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	root, err := localstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fulfillctl")
	build := exec.Command("go", "build", "-o", bin, "./infra/cmd/fulfillctl")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fulfillctl: %v\n%s", err, b)
	}
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(),
			"GOOGLE_CLOUD_PROJECT="+stack.Project,
			emulator.FirestoreHostEnv+"="+stack.Emulators.FirestoreHost,
			emulator.PubSubHostEnv+"="+stack.Emulators.PubSubHost,
		)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 60s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
