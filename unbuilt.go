package containerization

import "context"

// BuildOptions are the build options of [BuildContainers]. The zero value builds ./Dockerfile in ".".
type BuildOptions struct {
	DockerfilePath string            // default "Dockerfile"
	ContextPath    string            // default "."
	BuildArgs      map[string]string // --build-arg
	Target         string
	Labels         map[string]string
	NoCache        bool
	PushToRegistry bool
}

// BuildContainers builds an image from a Dockerfile, scans it and optionally pushes it (build_containers).
// Not built yet: it returns a *[ContainerBuildError] wrapping [ErrNotImplemented].
func BuildContainers(ctx context.Context, imageName string, opts BuildOptions) (*BuildResult, error) {
	return nil, &ContainerBuildError{Op: "build", Image: imageName, Err: notImplemented("build_containers")}
}

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
