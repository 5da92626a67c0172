package httpbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadsTheWholeBody(t *testing.T) {
	payload := strings.Repeat("x", 5000)
	for name, contentLength := range map[string]int64{"announced": 5000, "chunked": -1} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(payload))
		req.ContentLength = contentLength
		got, err := Read(httptest.NewRecorder(), req, 1<<20)
		if err != nil || string(got) != payload {
			t.Errorf("%s: read %d bytes, %v; want the %d sent", name, len(got), err, len(payload))
		}
	}
}

func TestABodyOverTheLimitIsRefused(t *testing.T) {
	for name, contentLength := range map[string]int64{"announced": 2000, "chunked": -1, "announced short": 10} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 2000)))
		req.ContentLength = contentLength
		_, err := Read(httptest.NewRecorder(), req, 1000)
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) || tooLarge.Limit != 1000 {
			t.Errorf("%s: err = %v, want an *http.MaxBytesError of limit 1000", name, err)
		}
	}
}

// A body whose Content-Length is given is read into one buffer of its size:
// io.ReadAll grows a 5 KiB body through five buffers.
func TestAnAnnouncedBodyIsReadIntoOneBuffer(t *testing.T) {
	payload := strings.Repeat("x", 5000)
	r := strings.NewReader(payload)
	req := httptest.NewRequest(http.MethodPost, "/", r)
	w := httptest.NewRecorder()
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(payload)
		req.Body = io.NopCloser(r)
		if b, err := Read(w, req, 1<<20); err != nil || len(b) != len(payload) {
			t.Fatalf("read %d bytes, %v", len(b), err)
		}
	})
	// The buffer, the limiting reader and the body's wrapper.
	if allocs > 3 {
		t.Errorf("%.0f allocations per read, want at most 3", allocs)
	}
}
