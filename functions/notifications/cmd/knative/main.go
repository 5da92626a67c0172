// Command knative serves notifications with knative func-go.
package main

import (
	"fulfillment/functions/notifications"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunKnative(notifications.Name, notifications.Setup) }
