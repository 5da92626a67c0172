// Command knative serves provisioning with knative func-go.
package main

import (
	provisioning "fulfillment/functions/provisioning"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(provisioning.Name, provisioning.Setup) }
