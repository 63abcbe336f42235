package compliance_test

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/codomyrmex/containerization/scan/compliance"
)

func ExampleCheck() {
	// An image that runs as root and has no HEALTHCHECK, scanned under the name the user gave it.
	img, _ := random.Image(512, 1)
	img, _ = mutate.Config(img, v1.Config{Cmd: []string{"/app"}})

	rep, err := compliance.Check(context.Background(), img, "registry.example/app", compliance.Options{
		// Content trust depends on the scanning environment, not on the image.
		Ignore: []string{"CIS-DI-0005"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rep.Failed() {
		fmt.Printf("%-5s %s %s: %v\n", r.Level, r.ID, r.Title, r.Details)
	}
	fmt.Println("compliance score:", rep.Score)
	// Output:
	// WARN  CIS-DI-0001 Create a user for the container: [USER is not set: the container runs as root]
	// WARN  CIS-DI-0006 Add HEALTHCHECK instruction to the container image: [no HEALTHCHECK in the image configuration]
	// WARN  DKL-DI-0006 Avoid latest tag: [registry.example/app has no tag, which means latest]
	// compliance score: 86.6
}
