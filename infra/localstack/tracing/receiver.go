package tracing

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Paths the receiver serves.
const (
	ExportPath = "/v1/traces" // OTLP/HTTP, binary protobuf
	TracesPath = "/traces"    // GET /traces/{id}: the spans; GET /traces?subject=S: trace ids
)

const maxExportBytes = 16 << 20

// Receiver is an OTLP/HTTP trace endpoint that keeps every span in memory,
// for the local stack only.
type Receiver struct {
	ln  net.Listener
	srv *http.Server
	mu  sync.Mutex
	// byTrace holds the spans of each trace, in arrival order.
	byTrace map[string][]Span
}

// StartReceiver listens on addr ("127.0.0.1:0" picks a free port).
func StartReceiver(addr string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tracing.StartReceiver: %w", err)
	}
	r := &Receiver{ln: ln, byTrace: map[string][]Span{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ExportPath, r.export)
	mux.HandleFunc("GET "+TracesPath+"/{id}", r.serveTrace)
	mux.HandleFunc("GET "+TracesPath, r.serveSubject)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }() // returns ErrServerClosed after Close
	return r, nil
}

// URL is the receiver's base URL; exporters send to URL()+ExportPath.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// Trace returns the spans received so far for traceID.
func (r *Receiver) Trace(traceID string) []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.byTrace[traceID]...)
}

// Spans is how many spans the receiver got in all.
func (r *Receiver) Spans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, spans := range r.byTrace {
		n += len(spans)
	}
	return n
}

// TracesOf returns the ids of the traces with a span about subject (an
// event subject: a subscription id), oldest first.
func (r *Receiver) TracesOf(subject string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	type found struct {
		id    string
		start time.Time
	}
	var ids []found
	for id, spans := range r.byTrace {
		for _, s := range spans {
			if s.Attributes[SubjectAttribute] == subject {
				ids = append(ids, found{id, s.Start})
				break
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].start.Before(ids[j].start) })
	out := make([]string, len(ids))
	for i, f := range ids {
		out[i] = f.id
	}
	return out
}

// export takes one OTLP/HTTP export request (binary protobuf, maybe gzipped).
func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "only application/x-protobuf is accepted", http.StatusUnsupportedMediaType)
		return
	}
	body := io.Reader(http.MaxBytesReader(w, req.Body, maxExportBytes))
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body", http.StatusBadRequest)
			return
		}
		defer gz.Close()
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	r.add(FromOTLP(&msg))
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (r *Receiver) add(spans []Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range spans {
		r.byTrace[s.TraceID] = append(r.byTrace[s.TraceID], s)
	}
}

func (r *Receiver) serveTrace(w http.ResponseWriter, req *http.Request) {
	writeJSON(w, r.Trace(req.PathValue("id")))
}

func (r *Receiver) serveSubject(w http.ResponseWriter, req *http.Request) {
	writeJSON(w, r.TracesOf(req.URL.Query().Get("subject")))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Client reads a running receiver (fulfillctl's side).
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Trace fetches the spans of traceID.
func (c Client) Trace(ctx context.Context, traceID string) ([]Span, error) {
	var spans []Span
	return spans, c.get(ctx, TracesPath+"/"+url.PathEscape(traceID), &spans)
}

// TracesOf fetches the ids of the traces about subject.
func (c Client) TracesOf(ctx context.Context, subject string) ([]string, error) {
	var ids []string
	return ids, c.get(ctx, TracesPath+"?subject="+url.QueryEscape(subject), &ids)
}

func (c Client) get(ctx context.Context, path string, v any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tracing: GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
