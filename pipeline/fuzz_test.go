package pipeline_test

import (
	"errors"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/pipeline"
)

// FuzzParsePipeline: a pipeline file is refused with ErrInvalidArgument, or parses to a pipeline that holds what
// validation promises (a name, an image, a test with a check, sign and deploy only with push), the same twice.
func FuzzParsePipeline(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("version: 1\nname: a\nimage: a:1\n"))
	f.Add([]byte("version: 1\nname: a\nimage: a:1\ntest: {run: {cmd: [x], exit_code: 3}}\npush: {}\nsign: {key: k}\n"))
	f.Add([]byte("version: 1\nname: a\nimage: a:1\nx: &a [1]\ny: *a\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := pipeline.Parse(doc, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Parse = %v, want ErrInvalidArgument", err)
			}
			return
		}
		if p.Name == "" || p.Image == "" || p.Version != pipeline.Version {
			t.Fatalf("accepted without a name, an image or the version: %+v", p)
		}
		if tt := p.Test; tt != nil && len(tt.HTTP) == 0 && len(tt.Exec) == 0 && tt.Run == nil && !tt.HealthCheck && tt.Beside == nil {
			t.Fatalf("accepted a test without a check: %q", doc)
		}
		if (p.Sign != nil || p.Deploy != nil) && p.Push == nil {
			t.Fatalf("accepted sign or deploy without push: %q", doc)
		}
		again, err := pipeline.Parse(doc, "fuzz.yaml")
		if err != nil || again.Name != p.Name || again.Image != p.Image {
			t.Fatalf("Parse is not deterministic: %v", err)
		}
	})
}
