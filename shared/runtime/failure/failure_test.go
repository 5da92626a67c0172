package failure_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"fulfillment/shared/runtime/failure"
)

func TestCallNamesServiceAndHostOnly(t *testing.T) {
	t.Parallel()
	cause := context.DeadlineExceeded
	err := failure.Call("slack", &url.Error{Op: "Post", URL: "https://hooks.slack.com/services/T1/B2/s3cret?x=y", Err: cause})
	msg := err.Error()
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "/services") || strings.Contains(msg, "x=y") {
		t.Errorf("Call kept the URL: %q", msg)
	}
	if !strings.Contains(msg, "slack") || !strings.Contains(msg, "hooks.slack.com") {
		t.Errorf("Call = %q, want the service and host", msg)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Call lost its cause: %v", err)
	}
	if failure.IsPermanent(err) {
		t.Error("Call classified the error as permanent")
	}
	if failure.Call("x", nil) != nil {
		t.Error("Call(nil) is not nil")
	}
}
