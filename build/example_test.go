package build_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/engine"
)

// Build ./app/Dockerfile on the engine at DOCKER_HOST, print each step as it completes, and report a failing
// step with its line and output.
func ExampleBuild() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	res, err := build.Build(ctx, eng, build.Options{
		ContextPath: "app",
		BuildArgs:   map[string]string{"VERSION": "1.2.3"},
		Tags:        []string{"example.com/app:1.2.3"},
		Progress: func(e build.Event) {
			if e.Kind == build.StepCompleted {
				fmt.Println(e.Name, "cached:", e.Cached)
			}
		},
	})
	var step *build.StepError
	switch {
	case errors.As(err, &step):
		fmt.Printf("line %d: %s exited with %d\n", step.Line, step.Instruction, step.ExitCode)
		for _, l := range step.Output {
			fmt.Println("  ", l)
		}
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println(res.ImageID, res.CacheHits, "of", res.Steps, "steps cached")
	}
}

// A StepError names the failing instruction, where it is and what it printed last.
func ExampleStepError() {
	err := fmt.Errorf("building Dockerfile: %w", &build.StepError{
		Instruction: "RUN make test",
		Line:        7,
		ExitCode:    2,
		Output:      []string{"FAIL: TestParse"},
		Err:         errors.New("exit code: 2"),
	})
	var step *build.StepError
	if errors.As(err, &step) {
		fmt.Println(step.Line, step.ExitCode, step.Output[len(step.Output)-1])
	}
	fmt.Println(err)
	// Output:
	// 7 2 FAIL: TestParse
	// building Dockerfile: step "RUN make test" (line 7) exited with code 2: exit code: 2
}
