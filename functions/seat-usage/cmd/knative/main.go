// Command knative serves seat-usage with knative func-go.
package main

import (
	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(seatusage.Name, seatusage.Setup) }
