// Command gcp serves payment-result with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	paymentresult "fulfillment/functions/payment-result"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(paymentresult.Name, paymentresult.Setup) }
