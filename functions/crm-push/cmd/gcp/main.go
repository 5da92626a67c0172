// Command gcp serves crm-push with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	crmpush "fulfillment/functions/crm-push"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(crmpush.Name, crmpush.Setup) }
