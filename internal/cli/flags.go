package cli

import (
	"os"
	"strings"

	"github.com/codomyrmex/containerization/engine"
)

// parseKeyValues adds --env or --label values, "KEY=VALUE", to m. With fromEnv, a bare "KEY" takes the value
// KEY has in this process's environment, and is skipped when unset, as docker run -e does.
func parseKeyValues(flag string, values []string, m map[string]string, fromEnv bool) error {
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok && fromEnv {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		} else if !ok {
			return invalidf("--%s %q: want KEY=VALUE", flag, kv)
		}
		if k == "" {
			return invalidf("--%s %q: the key is empty", flag, kv)
		}
		m[k] = v
	}
	return nil
}

// parsePublish reads a -p value into a key and host binding of [engine.PortBindings]. Two forms are accepted:
//
//	CONTAINERPORT[/PROTO]=[HOSTIP:]HOSTPORT     8080/tcp=127.0.0.1:18080, 53/udp=1053, 9000=  (Myrmex's)
//	[[HOSTIP:]HOSTPORT:]CONTAINERPORT[/PROTO]   127.0.0.1:18080:8080/tcp, 18080:8080, 8080    (docker run's)
//
// An empty host port lets the engine choose one. Ports and addresses are checked by the library.
func parsePublish(s string) (key, binding string, err error) {
	if key, binding, ok := strings.Cut(s, "="); ok {
		if key == "" {
			return "", "", invalidf("-p %q: want CONTAINERPORT[/PROTO]=[HOSTIP:]HOSTPORT", s)
		}
		return key, binding, nil
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		spec, binding = spec[i+1:], spec[:i]
	}
	if spec == "" {
		return "", "", invalidf("-p %q: want [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/PROTO] or CONTAINERPORT[/PROTO]=[HOSTIP:]HOSTPORT", s)
	}
	if hasProto {
		spec += "/" + proto
	}
	return spec, binding, nil
}

// parseVolume reads a -v value, SOURCE:TARGET[:ro|rw]. A SOURCE that starts with /, ./, ../ or ~/ is a host
// path; anything else names a volume.
func parseVolume(s string) (source string, m engine.VolumeMount, err error) {
	source, target, ok := strings.Cut(s, ":")
	if !ok || source == "" || target == "" {
		return "", m, invalidf("-v %q: want SOURCE:TARGET[:ro], such as data:/var/lib/data or ./site:/www:ro", s)
	}
	return source, engine.ParseVolumeMount(target), nil
}
