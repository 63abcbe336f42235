package containerization

import (
	"context"
	"fmt"
)

// checkSignKey refuses a signing key that cannot be read, before the pipeline runs.
func checkSignKey(path string) error {
	return fmt.Errorf("%w: signing (%s) is not built yet", ErrNotImplemented, path)
}

func (r *pipelineRun) sign(ctx context.Context) (string, any, error) {
	return "", nil, fmt.Errorf("%w: signing is not built yet", ErrNotImplemented)
}
