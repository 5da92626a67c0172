// Command gcp serves renewal with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	renewal "fulfillment/functions/renewal"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(renewal.Name, renewal.Setup) }
