package containerization

import "context"

// OptimizeOptions are the optimization parameters of [OptimizeContainers].
type OptimizeOptions struct {
	TargetSizeMB float64
}

// OptimizeContainers rewrites an image to be smaller, faster or harder, and measures before and after
// (optimize_containers). Not built yet: it returns a *[OptimizationError] wrapping [ErrNotImplemented].
func (c *Client) OptimizeContainers(ctx context.Context, imageName, optimizationType string, opts OptimizeOptions) (*OptimizationResult, error) {
	return nil, &OptimizationError{Op: optimizationType, Image: imageName, Err: notImplemented("optimize_containers")}
}
