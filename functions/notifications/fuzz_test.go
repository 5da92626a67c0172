package notifications

import (
	"testing"

	"fulfillment/shared/domain/notice"
	"fulfillment/shared/testsupport/fuzzing"
)

// FuzzHandle feeds arbitrary event data to the function: no input may panic it.
func FuzzHandle(f *testing.F) {
	fx := setup(f).f
	fuzzing.Events(f, notice.Handles, fx.Handle)
}
