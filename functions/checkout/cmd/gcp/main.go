// Command gcp serves checkout with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	"fulfillment/functions/checkout"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(checkout.Name, checkout.Setup) }
