// Command gcp serves notifications with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	"fulfillment/functions/notifications"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(notifications.Name, notifications.Setup) }
