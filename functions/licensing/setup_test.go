package licensing

import (
	"strings"
	"testing"

	"fulfillment/shared/runtime/config"
)

// TestConfigRequiresTheCodePepper: without ACTIVATION_CODE_PEPPER licensing
// does not start, so codes are never checked against unpeppered hashes;
// with it, the seat link limits default as documented.
func TestConfigRequiresTheCodePepper(t *testing.T) {
	t.Setenv("LICENSE_SIGNING_KEY", "c2VlZA==")
	t.Setenv("ACTIVATION_CODE_PEPPER", "")
	if _, err := config.Read[Config](); err == nil || !strings.Contains(err.Error(), "ACTIVATION_CODE_PEPPER") {
		t.Fatalf("no pepper: %v, want ACTIVATION_CODE_PEPPER named", err)
	}
	t.Setenv("ACTIVATION_CODE_PEPPER", "p")
	c, err := config.Read[Config]()
	if err != nil || c.SeatLinksPerIP != 60 || c.SeatLinksPerLicense != 50 || c.TrustedProxyHops != 0 {
		t.Fatalf("%+v %v", c, err)
	}
}
