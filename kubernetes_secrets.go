package containerization

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codomyrmex/containerization/kube"
)

// secretEnv splits a deployment's environment overrides: plain values stay values; values written
// "secret:NAME" are read from the secret store into one Secret, DEPLOYMENT-myrmex-secrets (key NAME), applied
// with the manifests, and the variables refer to its keys (valueFrom.secretKeyRef): no value is written into a
// pod spec, a result or a log. obj is nil when no value names a secret.
func (c *Client) secretEnv(deploymentName string, env map[string]string) (map[string]string, map[string]kube.SecretKey, *kube.Object, error) {
	plain := map[string]string{}
	refs := map[string]kube.SecretKey{}
	data := map[string]any{}
	secretName := deploymentName + "-myrmex-secrets"
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if !strings.HasPrefix(v, SecretPrefix) {
			plain[k] = v
			continue
		}
		if c.cfg.Secrets == nil {
			return nil, nil, nil, fmt.Errorf("%w: environment %s names a secret, and no secret store is set (Config.Secrets)", ErrInvalidArgument, k)
		}
		if len(secretName) > 253 {
			return nil, nil, nil, fmt.Errorf("%w: the Secret %s… would be longer than 253 characters", ErrInvalidArgument, secretName[:40])
		}
		name := strings.TrimPrefix(v, SecretPrefix)
		value, ok, err := c.cfg.Secrets.Secret(name)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("environment %s: %w", k, err)
		}
		if !ok {
			return nil, nil, nil, fmt.Errorf("%w: environment %s: secret %q is not in the store (myrmex secret set %s)", ErrNotFound, k, name, name)
		}
		data[name] = value
		refs[k] = kube.SecretKey{Name: secretName, Key: name}
	}
	if len(refs) == 0 {
		return plain, nil, nil, nil
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
		"metadata":   map[string]any{"name": secretName, "labels": map[string]any{"app.kubernetes.io/managed-by": "myrmex"}},
		"stringData": data,
	}}
	return plain, refs, &kube.Object{Unstructured: u, Source: "myrmex secret store"}, nil
}
