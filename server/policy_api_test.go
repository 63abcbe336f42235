package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

const apiPolicy = `version: 1
images:
  registries: [myrmex.local]
  tags: {forbid_latest: true}
gates: {push: warn, build: off}
`

// The policy in force over the API, and an image held to it at a gate without anything changing: an image from
// an allowed registry passes, one from another is refused naming the rule, at a gate that only warns it is
// refused in mode warn, at a gate that is off it passes; no policy shows every gate off; an unknown gate or no
// image is 400, an image not there 404.
func TestPolicyOverHTTP(t *testing.T) {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(apiPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Engine: eng, Policy: pol})

	st, body := e.do(state.ScopeRead, "GET", "/v1/policy", nil)
	var in server.PolicyInForce
	if err := json.Unmarshal(body, &in); st != 200 || err != nil || !in.Set || in.File != "policy.yaml" || in.Gates["push"] != policy.Warn ||
		in.Gates["apply"] != policy.Enforce || in.Gates["build"] != policy.Off || in.Policy["images"] == nil {
		t.Fatalf("GET /v1/policy = %d %s", st, body)
	}
	var rules []string
	for _, r := range in.Rules {
		rules = append(rules, r.Rule)
	}
	if !slices.Contains(rules, "images.registries") || !slices.Contains(rules, "images.tags.forbid_latest") {
		t.Errorf("the rules = %v", rules)
	}
	e.valid("/v1/policy", "GET", 200, body)

	// An image in a registry that is not allowed, at the apply gate (read from its registry); its tags before and
	// after: the check wrote nothing.
	reg := testenv.InProcess(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref("team/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	verdict := func(body any) *policy.Verdict {
		t.Helper()
		st, b := e.do(state.ScopeOperate, "POST", "/v1/policy/evaluate", body)
		var v policy.Verdict
		if err := json.Unmarshal(b, &v); st != 200 || err != nil {
			t.Fatalf("evaluate %v = %d %s", body, st, b)
		}
		e.valid("/v1/policy/evaluate", "POST", 200, b)
		return &v
	}
	v := verdict(map[string]any{"image_name": ref.String()})
	if v.Allowed || v.Gate != "apply" || v.Mode != policy.Enforce || len(v.Violations) != 1 || v.Violations[0].Rule != "images.registries" ||
		len(v.Images) != 1 || v.Images[0].Digest == "" {
		t.Errorf("verdict on %s = %+v; want refused by images.registries, naming the digest", ref, v)
	}
	tags, err := remote.List(ref.Context(), remote.WithTransport(reg.Transport()))
	if err != nil || !slices.Equal(tags, []string{"1"}) {
		t.Errorf("the repository's tags after the check = %v, %v; want only 1", tags, err)
	}
	// The engine's image, from an allowed registry, at the create gate; at the push gate (warn) and the build gate
	// (off) an image refused elsewhere.
	if v := verdict(map[string]any{"image_name": testimages.Busybox, "gate": "create"}); !v.Allowed || v.Mode != policy.Enforce || len(v.Violations) != 0 {
		t.Errorf("verdict on %s at create = %+v; want allowed", testimages.Busybox, v)
	}
	if v := verdict(map[string]any{"image_name": ref.String(), "gate": "apply"}); v.Allowed {
		t.Errorf("verdict at apply = %+v", v)
	}
	if _, err := eng.API().ImageTag(t.Context(), client.ImageTagOptions{Source: testimages.Busybox, Target: "elsewhere.example/busybox:api-policy"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), "elsewhere.example/busybox:api-policy", client.ImageRemoveOptions{})
	})
	if v := verdict(map[string]any{"image_name": "elsewhere.example/busybox:api-policy", "gate": "push"}); v.Allowed || v.Mode != policy.Warn {
		t.Errorf("verdict at push = %+v; want refused in mode warn", v)
	}
	if v := verdict(map[string]any{"image_name": "elsewhere.example/busybox:api-policy", "gate": "build"}); !v.Allowed || v.Mode != policy.Off {
		t.Errorf("verdict at build = %+v; want allowed, the gate off", v)
	}

	// Bad input and images not there.
	for _, c := range []struct {
		body any
		want int
	}{
		{`{}`, 400},
		{`{"image_name": "x", "gate": "deploy"}`, 400},
		{`{"image_name": "x", "bogus": 1}`, 400},
		{map[string]any{"image_name": "myrmex.local/nosuch:1", "gate": "create"}, 404},
		{map[string]any{"image_name": reg.Ref("team/nosuch:1")}, 404},
	} {
		st, body := e.do(state.ScopeOperate, "POST", "/v1/policy/evaluate", c.body)
		if st != c.want {
			t.Errorf("evaluate %v = %d %s, want %d", c.body, st, body, c.want)
			continue
		}
		e.valid("/v1/policy/evaluate", "POST", "default", body)
	}

	// A server without a policy: every gate off.
	none := newEnvWith(t, containerization.Config{Engine: eng})
	st, body = none.do(state.ScopeRead, "GET", "/v1/policy", nil)
	if err := json.Unmarshal(body, &in); st != 200 || err != nil || in.Set || in.Gates["apply"] != policy.Off || len(in.Rules) != 0 {
		t.Errorf("GET /v1/policy without a policy = %d %s", st, body)
	}
	none.valid("/v1/policy", "GET", 200, body)
	st, body = none.do(state.ScopeOperate, "POST", "/v1/policy/evaluate", map[string]any{"image_name": ref.String()})
	if st != 200 || !json.Valid(body) {
		t.Errorf("evaluate without a policy = %d %s", st, body)
	}
}
