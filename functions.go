package containerization

import "context"

// The specification's six functions as it spells them: each is the [Client] method of the same name on a client
// made for the one call from the connection options the call carries (Engine, Host, Logger; Kubeconfig and
// Context for Kubernetes), closed when it returns. A program that makes more than one call keeps a Client
// instead, and its connections.

// ManageContainers is [Client.ManageContainers] on a client made for the call.
func ManageContainers(ctx context.Context, operation, containerName string, config *ContainerConfig, opts ManageOptions) (*ContainerResult, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.ManageContainers(ctx, operation, containerName, config, opts)
}

// GetContainerMetrics is [Client.GetContainerMetrics] on a client made for the call.
func GetContainerMetrics(ctx context.Context, containerName string, opts MetricsOptions) ([]ContainerMetrics, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.GetContainerMetrics(ctx, containerName, opts)
}

// BuildContainers is [Client.BuildContainers] on a client made for the call.
func BuildContainers(ctx context.Context, imageName string, opts BuildOptions) (*BuildResult, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.BuildContainers(ctx, imageName, opts)
}

// ScanContainerSecurity is [Client.ScanContainerSecurity] on a client made for the call.
func ScanContainerSecurity(ctx context.Context, imageName, scanType string, opts ScanOptions) (*SecurityScanResult, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.ScanContainerSecurity(ctx, imageName, scanType, opts)
}

// ManageContainerRegistry is [Client.ManageContainerRegistry] on a client made for the call.
func ManageContainerRegistry(ctx context.Context, operation, imageName, registryURL string, opts RegistryOptions) (*RegistryResult, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.ManageContainerRegistry(ctx, operation, imageName, registryURL, opts)
}

// OrchestrateKubernetes is [Client.OrchestrateKubernetes] on a client made for the call.
func OrchestrateKubernetes(ctx context.Context, deploymentName, manifestPath, namespace string, opts KubernetesOptions) (*KubernetesDeployment, error) {
	c := callClient(nil, "", nil)
	defer c.Close()
	return c.OrchestrateKubernetes(ctx, deploymentName, manifestPath, namespace, opts)
}

// GetKubernetesDeployment is [Client.GetKubernetesDeployment] on a client made for the call.
func GetKubernetesDeployment(ctx context.Context, deploymentName, namespace string, opts KubernetesOptions) (*KubernetesDeployment, error) {
	c := callClient(nil, "", nil)
	defer c.Close()
	return c.GetKubernetesDeployment(ctx, deploymentName, namespace, opts)
}

// DeleteKubernetesDeployment is [Client.DeleteKubernetesDeployment] on a client made for the call.
func DeleteKubernetesDeployment(ctx context.Context, deploymentName, namespace string, opts KubernetesOptions) ([]KubernetesChange, error) {
	c := callClient(nil, "", nil)
	defer c.Close()
	return c.DeleteKubernetesDeployment(ctx, deploymentName, namespace, opts)
}

// OptimizeContainers is [Client.OptimizeContainers] on a client made for the call.
func OptimizeContainers(ctx context.Context, imageName, optimizationType string, opts OptimizeOptions) (*OptimizationResult, error) {
	c := callClient(nil, "", nil)
	defer c.Close()
	return c.OptimizeContainers(ctx, imageName, optimizationType, opts)
}

// AnalyzeImage is [Client.AnalyzeImage] on a client made for the call.
func AnalyzeImage(ctx context.Context, imageName string, opts AnalyzeOptions) (*ImageAnalysis, error) {
	c := callClient(opts.Engine, opts.Host, opts.Logger)
	defer c.Close()
	return c.AnalyzeImage(ctx, imageName, opts)
}
