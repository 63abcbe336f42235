package retention_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry/retention"
)

// FuzzParsePolicy reads arbitrary bytes as a retention policy (a file that decides what is deleted): an input is
// either refused with an error wrapping ErrInvalidArgument, or it is a valid policy that survives a round trip —
// written as JSON and read again, it is the same policy and still valid — so what a user wrote is what runs.
func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		"rules:\n- repositories: {pattern: \"**\"}\n  tags: {pattern: \"v*\"}\n  retain: {most_recently_pushed: 10}\n",
		"rules:\n- repositories: {pattern: \"team-a/*\", decoration: excludes}\n  tags: {pattern: \"{main,release-*}\"}\n  untagged: true\n  retain: {pushed_within_days: 106752}\n",
		`{"rules":[{"repositories":{"pattern":"a,b"},"tags":{"pattern":"**"},"retain":{"always":true},"disabled":true}]}`,
		"rules:\n- repositories: {pattern: \"[\"}\n  tags: {pattern: \"\"}\n  retain: {}\n",
		"rules:\n- repositories: {pattern: \"**\"}\n  tags: {pattern: \"**\"}\n  retain: {most_recently_pushed: -1, always: true}\n",
		"rules: []\n", "", "{}", "rules:\n- unknown: 1\n", "&a [*a]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := retention.ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ParsePolicy = %v, want an error wrapping ErrInvalidArgument", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("a parsed policy does not validate: %v", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := retention.ParsePolicy(b)
		if err != nil {
			t.Fatalf("the policy written as JSON does not read back: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normalize(p), normalize(again)) {
			t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, again)
		}
		for _, r := range p.Rules {
			_ = r.String()
		}
	})
}

// normalize makes an empty rule list and none the same.
func normalize(p retention.Policy) retention.Policy {
	if len(p.Rules) == 0 {
		p.Rules = nil
	}
	return p
}
