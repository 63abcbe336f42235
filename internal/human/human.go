// Package human says quantities as a person does, for what Myrmex prints and renders.
package human

import (
	"fmt"
	"time"
)

// Age is a duration as a person says it: "40 minutes", "1 hour", "3 days".
func Age(d time.Duration) string {
	n, unit := int(d.Hours()/24), "day"
	switch {
	case d < time.Hour:
		n, unit = int(d.Minutes()), "minute"
	case d < 48*time.Hour:
		n, unit = int(d.Hours()), "hour"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
