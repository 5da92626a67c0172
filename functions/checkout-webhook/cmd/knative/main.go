// Command knative serves checkout-webhook with knative func-go.
package main

import (
	checkoutwebhook "fulfillment/functions/checkout-webhook"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(checkoutwebhook.Name, checkoutwebhook.Setup) }
