// Command gcp serves provisioning with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	provisioning "fulfillment/functions/provisioning"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(provisioning.Name, provisioning.Setup) }
