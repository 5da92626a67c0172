// Command gcp serves seat-usage with functions-framework-go (Cloud Run, Cloud Functions).
package main

import (
	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/shared/runtime/entrypoint"
)

func main() { entrypoint.RunGCP(seatusage.Name, seatusage.Setup) }
