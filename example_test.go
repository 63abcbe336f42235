package containerization_test

import (
	"context"
	"errors"
	"fmt"

	containerization "github.com/codomyrmex/containerization"
)

// A bad configuration is refused before the engine is called, with an error that says which category it is
// (errors.Is) and which operation and container it concerns (errors.As).
func ExampleContainerManagementError() {
	cfg := &containerization.ContainerConfig{
		Image:         "myrmex.local/web:test",
		RestartPolicy: "sometimes",
	}
	_, err := containerization.ManageContainers(context.Background(), containerization.OpCreate, "web", cfg,
		containerization.ManageOptions{})
	var cme *containerization.ContainerManagementError
	if errors.As(err, &cme) && errors.Is(err, containerization.ErrInvalidArgument) {
		fmt.Println(cme.Op, cme.Container)
		fmt.Println(cme.Err)
	}
	// Output:
	// create web
	// invalid argument: restart_policy "sometimes": want no, always, unless-stopped or on-failure[:N]
}

// Create and start a web container with a published port, limits and a restart policy, then read its metrics.
func ExampleManageContainers() {
	ctx := context.Background()
	cfg := &containerization.ContainerConfig{
		Image:         "myrmex.local/web:test",
		Ports:         map[string]string{"8080/tcp": "127.0.0.1:18080"},
		Environment:   map[string]string{"MODE": "demo"},
		Resources:     containerization.Resources{CPULimit: "0.5", MemoryLimit: "128m"},
		RestartPolicy: "unless-stopped",
	}
	if _, err := containerization.ManageContainers(ctx, "create", "web", cfg, containerization.ManageOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	res, err := containerization.ManageContainers(ctx, "start", "web", nil, containerization.ManageOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status)
	metrics, _ := containerization.GetContainerMetrics(ctx, "web", containerization.MetricsOptions{})
	fmt.Printf("%.1f%% CPU, %.1f MB\n", metrics[0].CPUUsagePercent, metrics[0].MemoryUsageMB)
}
