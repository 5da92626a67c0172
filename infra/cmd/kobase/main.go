// Command kobase puts the functions' base image (CA certificates only) into
// ko's image cache and prints its digest reference, for KO_DEFAULTBASEIMAGE:
//
//	KOCACHE=.kocache KO_DEFAULTBASEIMAGE=$(go run ./infra/cmd/kobase) ko build ...
package main

import (
	"fmt"
	"os"

	"fulfillment/infra/image"
)

func main() {
	kocache := os.Getenv("KOCACHE")
	if kocache == "" {
		fmt.Fprintln(os.Stderr, "kobase: set KOCACHE (ko's cache directory)")
		os.Exit(2)
	}
	ref, err := image.WriteToCache(kocache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kobase:", err)
		os.Exit(1)
	}
	fmt.Println(ref.String())
}
