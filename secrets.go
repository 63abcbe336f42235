package containerization

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/codomyrmex/containerization/engine"
)

// SecretPrefix marks an environment value as a secret's name: "secret:db-password" is replaced, at create, by the
// value stored under db-password (myrmex secret set), which is never written into a result, a log, an error or a
// saved configuration of Myrmex's; the container's inspect shows "<secret>" in its place.
const SecretPrefix = "secret:"

// SecretSource is where secret values come from: Myrmex's encrypted store (*credstore.Store) or another.
type SecretSource interface {
	Secret(name string) (value string, ok bool, err error)
}

// resolveSecrets returns config with its secret: values replaced by the secrets' values, and the variables that
// hold them listed in engine.SecretEnvLabel; config itself is not changed.
func resolveSecrets(config *ContainerConfig, src SecretSource) (*ContainerConfig, error) {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(config.Environment)) {
		if strings.HasPrefix(config.Environment[k], SecretPrefix) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return config, nil
	}
	if src == nil {
		return nil, fmt.Errorf("%w: environment %s names a secret, and no secret store is set (Config.Secrets)", ErrInvalidArgument, names[0])
	}
	if _, taken := config.Labels[engine.SecretEnvLabel]; taken {
		return nil, fmt.Errorf("%w: label %s is Myrmex's own", ErrInvalidArgument, engine.SecretEnvLabel)
	}
	out := *config
	out.Environment = maps.Clone(config.Environment)
	out.Labels = maps.Clone(config.Labels)
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, k := range names {
		name := strings.TrimPrefix(config.Environment[k], SecretPrefix)
		v, ok, err := src.Secret(name)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", k, err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: environment %s: secret %q is not in the store (myrmex secret set %s)", ErrNotFound, k, name, name)
		}
		out.Environment[k] = v
	}
	out.Labels[engine.SecretEnvLabel] = strings.Join(names, ",")
	return &out, nil
}
