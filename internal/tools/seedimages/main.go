// Command seedimages imports the local images that Myrmex's tests, benchmarks and demo use into the engine at
// DOCKER_HOST. Nothing is pulled.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
)

func main() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "seedimages:", err)
		os.Exit(1)
	}
	defer eng.Close()
	if err := testimages.Ensure(ctx, eng); err != nil {
		fmt.Fprintln(os.Stderr, "seedimages:", err)
		os.Exit(1)
	}
}
