// Command knative serves failed-payment-alerting with knative func-go.
package main

import (
	failedpaymentalerting "fulfillment/functions/failed-payment-alerting"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(failedpaymentalerting.Name, failedpaymentalerting.Setup) }
