// Command gcp serves checkout-webhook with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	checkoutwebhook "fulfillment/functions/checkout-webhook"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(checkoutwebhook.Name, checkoutwebhook.Setup) }
