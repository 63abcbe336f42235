package containerization

import "context"

// KubernetesOptions are the deployment options of [OrchestrateKubernetes].
type KubernetesOptions struct {
	Replicas *int
	Image    string
	Labels   map[string]string
}

// OrchestrateKubernetes applies manifests and tracks the deployment down to its pods (orchestrate_kubernetes).
// Not built yet: it returns a *[KubernetesError] wrapping [ErrNotImplemented].
func OrchestrateKubernetes(ctx context.Context, deploymentName, manifestPath, namespace string, opts KubernetesOptions) (*KubernetesDeployment, error) {
	return nil, &KubernetesError{Op: "apply", Object: deploymentName, Err: notImplemented("orchestrate_kubernetes")}
}

// OptimizeOptions are the optimization parameters of [OptimizeContainers].
type OptimizeOptions struct {
	TargetSizeMB float64
}

// OptimizeContainers rewrites an image to be smaller, faster or harder, and measures before and after
// (optimize_containers). Not built yet: it returns a *[OptimizationError] wrapping [ErrNotImplemented].
func OptimizeContainers(ctx context.Context, imageName, optimizationType string, opts OptimizeOptions) (*OptimizationResult, error) {
	return nil, &OptimizationError{Op: optimizationType, Image: imageName, Err: notImplemented("optimize_containers")}
}
