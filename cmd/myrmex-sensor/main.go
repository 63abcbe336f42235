// Command myrmex-sensor is the program the optimizer copies into the containers it profiles and probes (see
// package optimize/sensor). It must be static: `CGO_ENABLED=0 go build ./cmd/myrmex-sensor`.
package main

import (
	"os"

	"github.com/codomyrmex/containerization/optimize/sensor"
)

func main() { os.Exit(sensor.Main(os.Args[1:])) }
