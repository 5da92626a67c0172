package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
)

// OpenStore opens Firestore on a project of the test's own (named from
// prefix), closed when the test ends.
func OpenStore(t testing.TB, prefix string) *store.Store {
	t.Helper()
	st, err := firestore.OpenStore(context.Background(), NewProject(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// PushBody is the raw body of a Pub/Sub push delivery carrying e in binary
// mode (ce- attributes), as the emulator or GCP posts it to a push endpoint.
func PushBody(e event.Event, messageID string) []byte {
	data, attrs := cloudevent.ToMessage(e)
	return RawPushBody(data, attrs, messageID)
}

// RawPushBody is the push body of a plain Pub/Sub message (a Cloud Scheduler
// tick has no ce- attributes).
func RawPushBody(data []byte, attrs map[string]string, messageID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": data, "attributes": attrs, "messageId": messageID,
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/p/subscriptions/s",
	})
	return b
}

// Post sends body to url as a JSON POST and returns the status code and the
// answer. It fails the test on a transport error.
func Post(t testing.TB, url string, body []byte) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}
