// Command knative serves renewal with knative func-go.
package main

import (
	renewal "fulfillment/functions/renewal"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(renewal.Name, renewal.Setup) }
