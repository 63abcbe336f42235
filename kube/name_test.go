package kube_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/kube"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"web", "my-app", "my.app", "a", strings.Repeat("a", 242)} {
		if err := kube.ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Web", "my_app", "-web", "web-", strings.Repeat("a", 243), strings.Repeat("a", 254)} {
		if err := kube.ValidateName(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
