// Command gcp serves licensing with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	"fulfillment/functions/licensing"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(licensing.Name, licensing.Setup) }
