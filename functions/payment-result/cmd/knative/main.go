// Command knative serves payment-result with knative func-go.
package main

import (
	paymentresult "fulfillment/functions/payment-result"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(paymentresult.Name, paymentresult.Setup) }
