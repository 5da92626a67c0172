package entrypoint

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// FuzzCloudEventHandler: any body under any of the three request shapes is
// answered 204, 400 or 413 (the handler here accepts every event), never a
// panic.
func FuzzCloudEventHandler(f *testing.F) {
	h := CloudEventHandler(func(context.Context, event.Event) error { return nil }, slog.New(slog.DiscardHandler))
	f.Add([]byte(`{"message":{"data":"e30=","attributes":{"ce-id":"1","ce-source":"//s","ce-type":"t","ce-specversion":"1.0"},"messageId":"m"}}`), "application/json", "")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"//s","type":"t","data":{}}`), "application/cloudevents+json", "")
	f.Add([]byte(`{}`), "application/json", "1.0")
	f.Add([]byte(`{"specversion":"0.1"}`), "application/cloudevents+json", "")
	f.Add([]byte("\x00"), "text/plain", "2.0")
	f.Fuzz(func(t *testing.T, body []byte, contentType, specversion string) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if specversion != "" {
			req.Header.Set("Ce-Specversion", specversion)
			req.Header.Set("Ce-Id", "1")
			req.Header.Set("Ce-Source", "//s")
			req.Header.Set("Ce-Type", "t")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d", w.Code)
		}
	})
}
