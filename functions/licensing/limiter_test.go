package licensing

import (
	"net/http/httptest"
	"testing"
)

// TestClientIPTakesTheEntryOurFrontEndWrote: the address the limits key on
// is the one our own front end appended, whatever a caller puts before it.
func TestClientIPTakesTheEntryOurFrontEndWrote(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		xff  []string
		f    forwarding
		want string
	}{
		{"not trusted: the peer", []string{"203.0.113.7"}, forwarding{}, "192.0.2.1"},
		{"Cloud Run direct: the last entry", []string{"203.0.113.7"}, forwarding{trust: true}, "203.0.113.7"},
		{"a caller's own entries before it are ignored", []string{"10.0.0.1, 198.51.100.9, 203.0.113.7"}, forwarding{trust: true}, "203.0.113.7"},
		{"behind a gateway: the entry before the gateway's", []string{"10.0.0.1, 203.0.113.7, 35.191.0.5"}, forwarding{trust: true, hops: 1}, "203.0.113.7"},
		{"over two header lines", []string{"10.0.0.1", "203.0.113.7, 35.191.0.5"}, forwarding{trust: true, hops: 1}, "203.0.113.7"},
		{"header shorter than the chain: its first entry", []string{"203.0.113.7"}, forwarding{trust: true, hops: 2}, "203.0.113.7"},
		{"garbage where the address is: the peer", []string{"10.0.0.1, not-an-ip"}, forwarding{trust: true}, "192.0.2.1"},
		{"IPv6, canonical", []string{"2001:DB8::0:1"}, forwarding{trust: true}, "2001:db8::1"},
		{"no header: the peer", nil, forwarding{trust: true, hops: 1}, "192.0.2.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/graphql", nil)
			r.RemoteAddr = "192.0.2.1:41234"
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, c.f); got != c.want {
				t.Fatalf("clientIP = %q, want %q", got, c.want)
			}
		})
	}
}
