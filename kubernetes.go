package containerization

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
)

// KubernetesOptions are the deployment options of [OrchestrateKubernetes] (the specification's kwargs), and the
// cluster to talk to for [GetKubernetesDeployment].
type KubernetesOptions struct {
	// Replicas sets the replicas of the deployment (the Deployment or StatefulSet named deploymentName, or the
	// only workload of the manifests).
	Replicas *int
	// Image sets the image of every container of the deployment; Images sets images by container name, in
	// every workload of the manifests.
	Image  string
	Images map[string]string
	// Resources sets requests and limits on every container of the deployment.
	Resources *ResourceRequirements
	// Labels and Annotations are added to every object and to the pod templates; Environment sets variables
	// on every container of the deployment, a value written "secret:NAME" from the secret store (Config.Secrets)
	// through a Secret applied with the manifests (see [SecretPrefix]). The manifest files are never edited.
	Labels, Annotations, Environment map[string]string

	CreateNamespace bool // create the namespace when it does not exist
	DryRun          bool // server-side dry run: nothing is applied; the result says what would change
	ForceConflicts  bool // take over fields another field manager owns instead of failing with ErrConflict
	Prune           bool // delete what this deployment applied before that the manifests no longer hold
	Wait            bool // wait until every object is ready, failing fast on pods that cannot become ready
	Timeout         time.Duration

	Kubeconfig   string // empty: KUBECONFIG, ~/.kube/config, then in-cluster
	Context      string
	FieldManager string // default "myrmex"

	Stdin    io.Reader   // manifests when manifestPath is "-" (default os.Stdin)
	Progress func(Event) // apply, prune, wait and delete events per object, as they happen

	// Policy is held to every container the manifests run (images and pod specs) before anything is applied,
	// instead of the client's (Config.Policy). PinDigests applies each image as the digest it resolved to (and
	// was checked at): a tag that moves afterwards changes nothing. Registry has the credentials and CA for
	// resolving and scanning the images.
	Policy     *policy.Policy
	PinDigests bool
	Registry   RegistryOptions
}

// KubernetesChange is what an apply did or would do to one object.
type KubernetesChange = kube.Change

func kubeErr(op, object string, err error) error {
	if err == nil {
		return nil
	}
	var re *kube.RolloutError
	var oe *kube.ObjectError
	switch {
	case errors.As(err, &re) && re.Object != "" && !re.TimedOut:
		object = re.Object
	case errors.As(err, &oe):
		object = oe.Object
	}
	return &KubernetesError{Op: op, Object: object, Err: err}
}

// OrchestrateKubernetes applies the manifests at manifestPath (a file, a directory read recursively, or "-" for
// stdin; YAML or JSON, several documents each; any kind the cluster serves) to namespace with server-side apply,
// after the overrides of opts, and returns the deployment named deploymentName with its pods and services
// (orchestrate_kubernetes). An empty namespace is the kubeconfig context's namespace, else "default", as kubectl
// takes it. Objects are applied in dependency order (namespaces and CRDs, then configuration
// and services, then workloads), each checked first by the API server in a dry run so that a bad object stops
// the apply before anything changes. Errors are *[KubernetesError]s wrapping ErrInvalidArgument (malformed
// manifests, unknown kinds), ErrNotFound (missing namespace, file), ErrConflict (fields another manager owns),
// ErrUnauthorized, ErrUnavailable, or ErrRolloutFailed (a pod that cannot start, or the wait timed out).
func (c *Client) OrchestrateKubernetes(ctx context.Context, deploymentName, manifestPath, namespace string, opts KubernetesOptions) (*KubernetesDeployment, error) {
	subject := deploymentName
	if err := kube.ValidateName(deploymentName); err != nil {
		return nil, kubeErr("apply", subject, err)
	}
	if opts.Replicas != nil && (*opts.Replicas < 0 || *opts.Replicas > 1<<30) {
		return nil, kubeErr("apply", subject, fmt.Errorf("%w: replicas %d", ErrInvalidArgument, *opts.Replicas))
	}
	objs, err := kube.ReadManifests(manifestPath, opts.Stdin)
	if err != nil {
		return nil, kubeErr("apply", subject, err)
	}
	kc, err := c.kube(opts)
	if err != nil {
		return nil, kubeErr("apply", subject, err)
	}
	if namespace == "" {
		namespace = kc.DefaultNamespace() // the kubeconfig context's, as kubectl does
	}
	env, secretRefs, secretObj, err := c.secretEnv(deploymentName, opts.Environment)
	if err != nil {
		return nil, kubeErr("apply", subject, err)
	}
	if secretObj != nil {
		objs = append(objs, secretObj)
	}
	ov := kube.Overrides{Image: opts.Image, Images: opts.Images, Labels: opts.Labels, Annotations: opts.Annotations, Env: env, SecretEnv: secretRefs}
	if opts.Replicas != nil {
		n := int32(*opts.Replicas)
		ov.Replicas = &n
	}
	if r := opts.Resources; r != nil {
		ov.Requests, ov.Limits = amounts(r.Requests), amounts(r.Limits)
	}
	var verdict *policy.Verdict
	var gate kube.Gate
	if pol := c.policyFor(opts.Policy); pol != nil || opts.PinDigests {
		gate = c.applyGate(pol, opts, &verdict)
	}
	res, err := kc.Apply(ctx, objs, kube.ApplyOptions{
		Name: deploymentName, Namespace: namespace, CreateNamespace: opts.CreateNamespace, Overrides: ov, Gate: gate,
		DryRun: opts.DryRun, ForceConflicts: opts.ForceConflicts, Prune: opts.Prune,
		Wait: opts.Wait, Timeout: opts.Timeout, Progress: kubeProgress(opts.Progress),
	})
	var d *KubernetesDeployment
	if res != nil {
		d = fromStatus(res.Status, deploymentName, namespace)
		d.Changes, d.Pruned, d.DryRun = res.Changes, res.Pruned, res.DryRun
	}
	if verdict != nil {
		if d == nil {
			d = fromStatus(nil, deploymentName, namespace)
			d.Status = "refused"
		}
		d.PolicyVerdict = verdict
	}
	if err != nil {
		return d, kubeErr("apply", subject, err)
	}
	return d, nil
}

// GetKubernetesDeployment reads a deployment (a Deployment, StatefulSet or DaemonSet) with its pods and services.
// Only the cluster options of opts are used.
func (c *Client) GetKubernetesDeployment(ctx context.Context, deploymentName, namespace string, opts KubernetesOptions) (*KubernetesDeployment, error) {
	kc, namespace, err := c.deployment("status", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	st, err := kc.Status(ctx, namespace, deploymentName)
	if err != nil {
		return nil, kubeErr("status", deploymentName, err)
	}
	return fromStatus(st, deploymentName, namespace), nil
}

// KubernetesDeployments lists the deployments (Deployments, StatefulSets and DaemonSets) of namespace, each with
// its pods and services, by kind and name; an empty namespace is the kubeconfig context's. Only the cluster
// options of opts are used.
func (c *Client) KubernetesDeployments(ctx context.Context, namespace string, opts KubernetesOptions) ([]KubernetesDeployment, error) {
	kc, err := c.kube(opts)
	if err != nil {
		return nil, kubeErr("list", namespace, err)
	}
	if namespace == "" {
		namespace = kc.DefaultNamespace()
	}
	list, err := kc.List(ctx, namespace)
	if err != nil {
		return nil, kubeErr("list", namespace, err)
	}
	out := make([]KubernetesDeployment, 0, len(list))
	for i := range list {
		out = append(out, *fromStatus(&list[i], list[i].Name, list[i].Namespace))
	}
	return out, nil
}

// KubernetesNamespaceList is the cluster's namespaces, and the kubeconfig context's.
type KubernetesNamespaceList = kube.NamespaceList

// KubernetesNamespaces lists the cluster's namespaces (at most kube.MaxListed) and says which one an empty
// namespace means. Only the cluster options of opts are used.
func (c *Client) KubernetesNamespaces(ctx context.Context, opts KubernetesOptions) (*KubernetesNamespaceList, error) {
	kc, err := c.kube(opts)
	if err != nil {
		return nil, kubeErr("namespaces", "", err)
	}
	l, err := kc.Namespaces(ctx)
	return l, kubeErr("namespaces", "", err)
}

func amounts(a ResourceAmounts) map[string]string {
	m := map[string]string{}
	if a.CPU != "" {
		m["cpu"] = a.CPU
	}
	if a.Memory != "" {
		m["memory"] = a.Memory
	}
	return m
}

func fromStatus(st *kube.Status, name, namespace string) *KubernetesDeployment {
	d := &KubernetesDeployment{Name: name, Namespace: namespace, Status: "pending", Ports: []int{},
		Environment: map[string]string{}, Pods: []PodStatus{}, Services: []string{}, Application: name}
	if st == nil {
		return d
	}
	d.apply(st)
	return d
}

func (d *KubernetesDeployment) apply(st *kube.Status) {
	d.Name, d.Namespace, d.Kind = st.Name, st.Namespace, st.Kind
	d.Replicas, d.ReadyReplicas, d.Image, d.Ports = st.Replicas, st.ReadyReplicas, st.Image, st.Ports
	d.Environment, d.Services, d.Status, d.Message = st.Environment, st.Services, st.Status, st.Message
	d.Resources = ResourceRequirements{
		Requests: ResourceAmounts{CPU: st.Requests["cpu"], Memory: st.Requests["memory"]},
		Limits:   ResourceAmounts{CPU: st.Limits["cpu"], Memory: st.Limits["memory"]},
	}
	d.Revision, d.CreatedAt, d.LastUpdated = st.Revision, st.CreatedAt, st.LastUpdated
	d.Pods = make([]PodStatus, 0, len(st.Pods))
	for _, p := range st.Pods {
		d.Pods = append(d.Pods, PodStatus{Name: p.Name, Phase: p.Phase, Ready: p.Ready, Restarts: p.Restarts,
			Reason: p.Reason, Container: p.Container, Message: p.Message, Node: p.Node})
	}
}

// deployment is the start of the Client's methods that act on a deployment by name: the name checked, the
// namespace defaulted to the kubeconfig context's (as kubectl takes it), the cluster client.
func (c *Client) deployment(op, deploymentName, namespace string, opts KubernetesOptions) (*kube.Client, string, error) {
	if err := kube.ValidateName(deploymentName); err != nil {
		return nil, "", kubeErr(op, deploymentName, err)
	}
	kc, err := c.kube(opts)
	if err != nil {
		return nil, "", kubeErr(op, deploymentName, err)
	}
	if namespace == "" {
		namespace = kc.DefaultNamespace()
	}
	if err := kube.ValidateNamespace(namespace); err != nil {
		return nil, "", kubeErr(op, deploymentName, err)
	}
	return kc, namespace, nil
}

// WaitKubernetesDeployment waits until everything the deployment applied is ready, failing fast
// (ErrRolloutFailed naming the pod, container and reason) on pods that cannot become ready; timeout 0 means 5
// minutes. It returns the deployment as it is at the end, also when the wait failed. opts.Progress receives the
// wait's events.
func (c *Client) WaitKubernetesDeployment(ctx context.Context, deploymentName, namespace string, timeout time.Duration, opts KubernetesOptions) (*KubernetesDeployment, error) {
	kc, namespace, err := c.deployment("wait", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	st, err := kc.Wait(ctx, namespace, deploymentName, timeout, kubeProgress(opts.Progress))
	var d *KubernetesDeployment
	if st != nil {
		d = fromStatus(st, deploymentName, namespace)
	}
	return d, kubeErr("wait", namespace+"/"+deploymentName, err)
}

// ScaleKubernetesDeployment sets the replicas of the deployment (a Deployment or StatefulSet).
func (c *Client) ScaleKubernetesDeployment(ctx context.Context, deploymentName, namespace string, replicas int, opts KubernetesOptions) (*KubernetesDeployment, error) {
	if replicas < 0 || replicas > 1<<30 {
		return nil, kubeErr("scale", deploymentName, fmt.Errorf("%w: replicas %d", ErrInvalidArgument, replicas))
	}
	kc, namespace, err := c.deployment("scale", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	st, err := kc.Scale(ctx, namespace, deploymentName, int32(replicas))
	if err != nil {
		return nil, kubeErr("scale", namespace+"/"+deploymentName, err)
	}
	return fromStatus(st, deploymentName, namespace), nil
}

// RollbackKubernetesDeployment puts the pod template of the deployment (a Deployment, StatefulSet or DaemonSet)
// back to revision toRevision, or to the previous revision when toRevision is 0 (kubectl rollout undo).
func (c *Client) RollbackKubernetesDeployment(ctx context.Context, deploymentName, namespace string, toRevision int64, opts KubernetesOptions) (*KubernetesDeployment, error) {
	if toRevision < 0 {
		return nil, kubeErr("rollback", deploymentName, fmt.Errorf("%w: revision %d", ErrInvalidArgument, toRevision))
	}
	kc, namespace, err := c.deployment("rollback", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	st, err := kc.Rollback(ctx, namespace, deploymentName, toRevision)
	if err != nil {
		return nil, kubeErr("rollback", namespace+"/"+deploymentName, err)
	}
	return fromStatus(st, deploymentName, namespace), nil
}

// KubernetesDeploymentHistory lists the revisions of the deployment (a Deployment, StatefulSet or DaemonSet),
// oldest first.
func (c *Client) KubernetesDeploymentHistory(ctx context.Context, deploymentName, namespace string, opts KubernetesOptions) ([]KubernetesRevision, error) {
	kc, namespace, err := c.deployment("history", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	revs, err := kc.History(ctx, namespace, deploymentName)
	return revs, kubeErr("history", namespace+"/"+deploymentName, err)
}

// DeleteKubernetesDeployment removes everything a deployment applied (its inventory; also when its workload is
// gone already), workloads first, then the inventory; with opts.Wait, until the objects are gone (opts.Timeout,
// default 2 minutes). A deployment Myrmex did not apply has its workload of that name deleted; none at all is
// ErrNotFound.
func (c *Client) DeleteKubernetesDeployment(ctx context.Context, deploymentName, namespace string, opts KubernetesOptions) ([]KubernetesChange, error) {
	kc, namespace, err := c.deployment("delete", deploymentName, namespace, opts)
	if err != nil {
		return nil, err
	}
	ch, err := kc.Delete(ctx, namespace, deploymentName, kube.DeleteOptions{Wait: opts.Wait, Timeout: opts.Timeout, Progress: kubeProgress(opts.Progress)})
	return ch, kubeErr("delete", namespace+"/"+deploymentName, err)
}
