// Command gcp serves failed-payment-alerting with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	failedpaymentalerting "fulfillment/functions/failed-payment-alerting"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(failedpaymentalerting.Name, failedpaymentalerting.Setup) }
