package containerization

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
)

// CheckKubernetesPolicy holds the containers that objs would run (Pods, and the pod templates of Deployments,
// StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and ReplicationControllers; other kinds run nothing) to
// the policy at the apply gate, as [Client.OrchestrateKubernetes] does before it applies manifests: the same
// gate, so the same images resolved in their registries (their digests, their configurations' users, their
// scans and signatures where the policy reads them) and the same pod specs. Nothing is applied or changed.
//
// Of opts, only Policy (else the client's) and Registry are read. The verdict is nil without a policy or with
// the apply gate off. The error is a *[KubernetesError] wrapping the refusal (ErrPolicyViolation, a
// *policy.Error with the verdict) when the gate enforces, or why the facts could not be gathered: a registry
// that does not answer, or ctx's deadline, which bounds every lookup.
func (c *Client) CheckKubernetesPolicy(ctx context.Context, objs []*unstructured.Unstructured, opts KubernetesOptions) (*policy.Verdict, error) {
	subject := ""
	if len(objs) > 0 && objs[0] != nil {
		subject = (&kube.Object{Unstructured: objs[0]}).Ref()
	}
	if len(objs) > kube.MaxObjects {
		return nil, kubeErr("check", subject, fmt.Errorf("%w: %d objects, more than %d", ErrInvalidArgument, len(objs), kube.MaxObjects))
	}
	pol := c.policyFor(opts.Policy)
	if pol == nil {
		return nil, nil
	}
	wrapped := make([]*kube.Object, 0, len(objs))
	for _, o := range objs {
		if o == nil {
			return nil, kubeErr("check", subject, fmt.Errorf("%w: a nil object", ErrInvalidArgument))
		}
		wrapped = append(wrapped, &kube.Object{Unstructured: o})
	}
	opts.PinDigests = false // nothing is applied, so nothing is pinned
	var verdict *policy.Verdict
	_, err := c.applyGate(pol, opts, &verdict)(ctx, kube.PodContainers(wrapped))
	return verdict, kubeErr("check", subject, err)
}
