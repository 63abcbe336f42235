package optimize

import "fmt"

// Gate holds an analysis to thresholds, as dive's CI mode does (.dive-ci). A nil field is a rule left out.
type Gate struct {
	// LowestEfficiency fails an image whose Efficiency is below it (dive: lowestEfficiency, 0 to 1).
	LowestEfficiency *float64 `json:"lowest_efficiency,omitempty"`
	// HighestWastedBytes fails an image whose WastedBytes are above it (dive: highestWastedBytes).
	HighestWastedBytes *int64 `json:"highest_wasted_bytes,omitempty"`
	// HighestUserWastedPercent fails an image whose UserWastedPercent is above it (dive:
	// highestUserWastedPercent, a ratio 0 to 1).
	HighestUserWastedPercent *float64 `json:"highest_user_wasted_percent,omitempty"`
}

// Violation is a rule of a Gate that an analysis fails.
type Violation struct {
	Rule    string `json:"rule"` // dive's key: lowestEfficiency, highestWastedBytes, highestUserWastedPercent
	Message string `json:"message"`
}

// Validate refuses thresholds outside their range.
func (g Gate) Validate() error {
	if v := g.LowestEfficiency; v != nil && !(*v >= 0 && *v <= 1) {
		return fmt.Errorf("%w: the lowest efficiency %v is not a ratio between 0 and 1", ErrInvalidThreshold, *v)
	}
	if v := g.HighestUserWastedPercent; v != nil && !(*v >= 0 && *v <= 1) {
		return fmt.Errorf("%w: the highest user wasted percent %v is not a ratio between 0 and 1", ErrInvalidThreshold, *v)
	}
	if v := g.HighestWastedBytes; v != nil && *v < 0 {
		return fmt.Errorf("%w: the highest wasted bytes %d is negative", ErrInvalidThreshold, *v)
	}
	return nil
}

// Check returns the rules a fails, in the order above; none when it passes.
func (g Gate) Check(a *Analysis) []Violation {
	var out []Violation
	if v := g.LowestEfficiency; v != nil && a.Efficiency < *v {
		out = append(out, Violation{"lowestEfficiency", fmt.Sprintf("image efficiency is too low (efficiency=%.4f < threshold=%v)", a.Efficiency, *v)})
	}
	if v := g.HighestWastedBytes; v != nil && a.WastedBytes > *v {
		out = append(out, Violation{"highestWastedBytes", fmt.Sprintf("too many bytes wasted (wasted-bytes=%d > threshold=%d)", a.WastedBytes, *v)})
	}
	if v := g.HighestUserWastedPercent; v != nil && a.UserWastedPercent > *v {
		out = append(out, Violation{"highestUserWastedPercent", fmt.Sprintf("too many bytes wasted, relative to the user bytes added (user-wasted=%.4f > threshold=%v)", a.UserWastedPercent, *v)})
	}
	return out
}
