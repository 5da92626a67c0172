package failedpaymentalerting

import (
	"testing"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/testsupport/fuzzing"
)

// FuzzHandle feeds arbitrary event data to the function: no input may panic it.
func FuzzHandle(f *testing.F) {
	fx := setup(f)
	fuzzing.Events(f, []string{catalog.PaymentFailed}, fx.f.Handle)
}
