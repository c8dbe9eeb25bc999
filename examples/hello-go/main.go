// The smallest Go program for the static base: pure Go (CGO_ENABLED=0), statically linked.
package main

import "fmt"

func main() {
	fmt.Println("Hello Distroless")
}
