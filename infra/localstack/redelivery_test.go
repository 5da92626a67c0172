package localstack

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"fulfillment/infra/topology"
	"fulfillment/shared/testsupport/emulator"
)

// A push that finds the function's process down (killed, being restarted)
// waits for it, as Cloud Run's front end holds a request, and arrives as
// the same attempt: it does not burn one of the message's attempts.
func TestAPushWaitsForTheFunctionsProcessToComeBack(t *testing.T) {
	port, err := emulator.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// A refused push would come back after the backoff, 5 s or more.
	policy := topology.Delivery{AckDeadlineSeconds: 10, MaxDeliveryAttempts: 5, MinimumBackoff: 10 * time.Second, MaximumBackoff: 10 * time.Second}
	r := newRedeliverer("provisioning", fmt.Sprintf("http://127.0.0.1:%d/", port), policy, nil, io.Discard, &pushWaits{})
	defer r.Close()
	r.queue <- push{body: map[string]any{"message": map[string]any{"data": "e30=", "messageId": "m1"}}, attempt: 1}

	time.Sleep(300 * time.Millisecond) // the port refuses meanwhile
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	attempts := make(chan float64, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(req.Body).Decode(&body)
		attempt, _ := body["deliveryAttempt"].(float64)
		attempts <- attempt
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	select {
	case a := <-attempts:
		if a != 1 {
			t.Errorf("the push arrived as attempt %v, want 1: the refused connection cost it an attempt", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the push did not reach the function within 3 s of its coming back")
	}
}
