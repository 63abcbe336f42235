package engine_test

import (
	"context"
	"fmt"

	"github.com/codomyrmex/containerization/engine"
)

// The restart policies the specification names, in the engine's terms.
func ExampleParseRestartPolicy() {
	for _, s := range []string{"no", "unless-stopped", "on-failure:3"} {
		p, err := engine.ParseRestartPolicy(s)
		fmt.Println(p.Name, p.MaximumRetryCount, err)
	}
	// Output:
	// no 0 <nil>
	// unless-stopped 0 <nil>
	// on-failure 3 <nil>
}

// Validation reports every problem of a configuration at once, before anything is sent to the engine.
func ExampleContainerConfig_Validate() {
	cfg := engine.ContainerConfig{
		Image:     "myrmex.local/web:test",
		Ports:     engine.PortBindings{"8080/tcp": "127.0.0.1:99999"},
		Resources: engine.Resources{MemoryLimit: "256q"},
	}
	fmt.Println(cfg.Validate("web"))
	// Output:
	// invalid argument: ports["8080/tcp"]: host port "99999" is not a number in 1-65535; resources: memory_limit: memory amount "256q": want a size such as 256m, 1g or 512MiB
}

// A client for the engine at DOCKER_HOST: create, start, sample and remove a container.
func ExampleClient() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	cfg := engine.ContainerConfig{Image: "myrmex.local/busybox:test", Command: []string{"sleep", "60"}}
	if _, err := eng.Create(ctx, "example", cfg, engine.CreateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Remove(ctx, "example", engine.RemoveOptions{Force: true})
	if _, err := eng.Start(ctx, "example"); err != nil {
		fmt.Println(err)
		return
	}
	m, _ := eng.Metrics(ctx, "example")
	fmt.Println(m.ContainerName, m.Status, m.HealthStatus)
}
