// Package entrypoint serves a function over HTTP on either runtime:
// functions-framework-go (GCP) or knative func-go. Both serve the same
// http.Handler.
//
// CloudEvents are decoded here, synchronously, per request, instead of by
// the SDK receivers those frameworks wrap (cloudevents.NewHTTPReceiveHandler):
// under concurrent requests that receiver hands events between requests
// through one shared channel and can leave a request unanswered (sdk-go
// issues 1224 and 1332), which for Pub/Sub push is a stuck delivery.
package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/httpbody"
)

// maxEventBytes caps a delivery: Pub/Sub messages are at most 10 MB, ours far smaller.
const maxEventBytes = 1 << 20

// EventFunc handles one CloudEvent; an error asks for redelivery.
type EventFunc func(ctx context.Context, e event.Event) error

// CloudEventHandler serves fn for three request shapes: a raw Pub/Sub push
// body, a binary or structured CloudEvent (Eventarc, Knative Eventing).
// 2xx acknowledges; 500 asks for redelivery; 400 refuses a body that is no
// event at all (Pub/Sub then retries it and, past the maximum attempts,
// moves it to the dead-letter topic).
func CloudEventHandler(fn EventFunc, logger *slog.Logger) http.Handler {
	return RecordingHandler(fn, nil, logger)
}

// UndecodableFunc keeps a delivery that is no event at all where an
// operator sees it (dead_letters and the dead-letter topic).
type UndecodableFunc func(ctx context.Context, body []byte, cause error) error

// RecordingHandler is CloudEventHandler that hands an undecodable delivery
// to record and acknowledges it once recorded (a retry cannot fix it),
// rather than leaving it to Pub/Sub's dead-letter topic unrecorded. A
// failure to record asks for redelivery. A nil record answers 400.
func RecordingHandler(fn EventFunc, record UndecodableFunc, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a CloudEvent or a Pub/Sub push", http.StatusMethodNotAllowed)
			return
		}
		body, err := httpbody.Read(w, r, maxEventBytes)
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		e, delivery, err := decode(r, body)
		if err != nil {
			logger.WarnContext(r.Context(), "undecodable delivery", "error", err.Error())
			if record == nil {
				http.Error(w, "not a CloudEvent or Pub/Sub push: "+err.Error(), http.StatusBadRequest)
				return
			}
			if recErr := record(r.Context(), body, err); recErr != nil {
				logger.ErrorContext(r.Context(), "undecodable delivery not recorded; redeliver", "error", recErr.Error())
				http.Error(w, "not recorded; redeliver", http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if err := fn(cloudevent.WithDelivery(r.Context(), delivery), e); err != nil {
			http.Error(w, "processing failed; redeliver", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// decode returns the event and, for a Pub/Sub push, its message id and
// delivery attempt (what decides the last attempt's dead letter, see
// shared/runtime/consumer).
func decode(r *http.Request, body []byte) (event.Event, cloudevent.Delivery, error) {
	if r.Header.Get("Ce-Specversion") == "" && !bytes.Contains([]byte(r.Header.Get("Content-Type")), []byte("cloudevents")) {
		return cloudevent.ParsePushDelivery(body)
	}
	e, err := decodeCloudEvent(r, body)
	return e, cloudevent.Delivery{}, err
}

func decodeCloudEvent(r *http.Request, body []byte) (event.Event, error) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer msg.Finish(nil)
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		return event.Event{}, err
	}
	if e == nil {
		return event.Event{}, errors.New("empty event")
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, err
	}
	return *e, nil
}
