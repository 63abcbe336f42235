package build

import (
	"strings"

	bkclient "github.com/moby/buildkit/client"
)

// parseCache reads cache specifications in buildx's syntax: comma-separated key=value pairs with a "type"
// ("type=registry,ref=registry.example/app:cache,mode=max", "type=local,src=/dir", "type=local,dest=/dir"). A
// value without "=" is a registry reference, as `docker buildx build --cache-from app:cache` reads it.
//
// A local cache is read from "src" and written to "dest"; a registry cache names its image in "ref".
func parseCache(what string, specs []string, localDir string) ([]bkclient.CacheOptionsEntry, error) {
	var entries []bkclient.CacheOptionsEntry
	for _, spec := range specs {
		if !strings.Contains(spec, "=") {
			if spec == "" {
				return nil, invalid("empty %s", what)
			}
			entries = append(entries, bkclient.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": spec}})
			continue
		}
		e := bkclient.CacheOptionsEntry{Attrs: map[string]string{}}
		for _, field := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(field, "=")
			if !ok || k == "" {
				return nil, invalid("%s %q: %q is not key=value", what, spec, field)
			}
			if k == "type" {
				e.Type = v
			} else {
				e.Attrs[k] = v
			}
		}
		switch {
		case e.Type == "":
			return nil, invalid("%s %q has no type", what, spec)
		case e.Type == "local" && e.Attrs[localDir] == "":
			return nil, invalid("%s %q: a local cache needs %s=DIR", what, spec, localDir)
		case e.Type == "registry" && e.Attrs["ref"] == "":
			return nil, invalid("%s %q: a registry cache needs ref=IMAGE", what, spec)
		}
		entries = append(entries, e)
	}
	return entries, nil
}
