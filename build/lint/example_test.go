package lint_test

import (
	"fmt"

	"github.com/codomyrmex/containerization/build/lint"
)

func ExampleLint() {
	dockerfile := []byte(`FROM debian
RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10 \
 && rm -rf /var/lib/apt/lists/*
# hadolint ignore=DL3025
CMD echo hello
`)
	rep, err := lint.Lint(dockerfile, lint.Options{FailureThreshold: lint.SeverityWarning})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range rep.Findings {
		fmt.Printf("%d %s %s: %s\n", f.Line, f.Rule, f.Severity, f.Message)
	}
	fmt.Println("failed:", rep.Failed)
	// Output:
	// 1 DL3006 warning: Always tag the version of an image explicitly
	// failed: true
}
