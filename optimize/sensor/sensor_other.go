//go:build !linux

package sensor

import (
	"fmt"
	"os"
)

// Main runs the sensor: Linux only (fanotify, and the containers it runs in).
func Main(args []string) int {
	fmt.Fprintln(os.Stderr, "myrmex-sensor runs in Linux containers only")
	return 2
}
