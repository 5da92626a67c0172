// Command knative serves crm-push with knative func-go.
package main

import (
	crmpush "fulfillment/functions/crm-push"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(crmpush.Name, crmpush.Setup) }
