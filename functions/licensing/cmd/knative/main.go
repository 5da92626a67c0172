// Command knative serves licensing with knative func-go.
package main

import (
	"fulfillment/functions/licensing"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(licensing.Name, licensing.Setup) }
