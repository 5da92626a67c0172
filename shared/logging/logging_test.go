package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestLogLineHasCloudLoggingShape(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, "provisioning", "debug", "demo")
	ctx := WithTrace(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	logger.WarnContext(ctx, "provisioned", "subscription_id", "sub-1")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	want := map[string]any{
		"severity":                      "WARNING",
		"message":                       "provisioned",
		"function":                      "provisioning",
		"subscription_id":               "sub-1",
		"logging.googleapis.com/trace":  "projects/demo/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"logging.googleapis.com/spanId": "00f067aa0ba902b7",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
}
