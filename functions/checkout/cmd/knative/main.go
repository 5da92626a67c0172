// Command knative serves checkout with knative func-go.
package main

import (
	"fulfillment/functions/checkout"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(checkout.Name, checkout.Setup) }
