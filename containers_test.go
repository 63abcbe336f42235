package containerization_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// nowhere is an engine address that never answers: input checks must fail before any call would reveal it.
const nowhere = "unix:///nonexistent/myrmex-docker.sock"

func TestManageContainersRejectsBadInputBeforeTheEngine(t *testing.T) {
	good := &containerization.ContainerConfig{Image: "img"}
	tests := []struct {
		name, op, container string
		cfg                 *containerization.ContainerConfig
		opts                containerization.ManageOptions
	}{
		{"unknown operation", "explode", "web", nil, containerization.ManageOptions{}},
		{"empty operation", "", "web", nil, containerization.ManageOptions{}},
		{"empty name", containerization.OpStart, "", nil, containerization.ManageOptions{}},
		{"blank name", containerization.OpStop, "  ", nil, containerization.ManageOptions{}},
		{"create without config", containerization.OpCreate, "web", nil, containerization.ManageOptions{}},
		{"bad port", containerization.OpCreate, "web", &containerization.ContainerConfig{Image: "img", Ports: map[string]string{"http": "80"}}, containerization.ManageOptions{}},
		{"bad memory", containerization.OpCreate, "web", &containerization.ContainerConfig{Image: "img", Resources: containerization.Resources{MemoryLimit: "a lot"}}, containerization.ManageOptions{}},
		{"bad restart policy", containerization.OpCreate, "web", &containerization.ContainerConfig{Image: "img", RestartPolicy: "never"}, containerization.ManageOptions{}},
		{"bad since", containerization.OpLogs, "web", nil, containerization.ManageOptions{Logs: containerization.LogOptions{Since: "last week"}}},
		{"negative stop timeout", containerization.OpStop, "web", nil, containerization.ManageOptions{StopTimeout: ptr(-time.Second)}},
		{"create with no name anywhere", containerization.OpCreate, "", good, containerization.ManageOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Host = nowhere
			res, err := containerization.ManageContainers(context.Background(), tt.op, tt.container, tt.cfg, tt.opts)
			if !errors.Is(err, containerization.ErrInvalidArgument) {
				t.Fatalf("ManageContainers(%q, %q) error = %v, want ErrInvalidArgument (and no engine call)", tt.op, tt.container, err)
			}
			var cme *containerization.ContainerManagementError
			if !errors.As(err, &cme) || cme.Op != tt.op {
				t.Errorf("ManageContainers(%q) error = %T %v, want *ContainerManagementError with Op %q", tt.op, err, err, tt.op)
			}
			if res == nil || res.Success || res.ErrorMessage == "" || res.Operation != tt.op {
				t.Errorf("ManageContainers(%q) result = %+v, want success false with an error message", tt.op, res)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestManageContainersUnavailableEngine(t *testing.T) {
	res, err := containerization.ManageContainers(context.Background(), containerization.OpList, "", nil,
		containerization.ManageOptions{Host: nowhere})
	if !errors.Is(err, containerization.ErrUnavailable) || !strings.Contains(err.Error(), nowhere) {
		t.Errorf("ManageContainers(list, %s) error = %v, want ErrUnavailable naming the address", nowhere, err)
	}
	if res.Success {
		t.Errorf("result.Success = true on failure")
	}
}

func TestManageContainersLifecycle(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	opts := containerization.ManageOptions{Engine: eng, StopTimeout: ptr(time.Duration(0))}
	name := run.Name("web")
	cfg := run.Config(testimages.Busybox, "sh", "-c", "echo ready; echo oops >&2; sleep 3600")
	cfg.Name = name

	type step struct {
		op, status string
		changed    bool
		wantErr    error
	}
	steps := []step{
		{containerization.OpCreate, "created", true, nil},
		{containerization.OpCreate, "", false, containerization.ErrAlreadyExists},
		{containerization.OpStart, "running", true, nil},
		{containerization.OpStart, "running", false, nil},
		{containerization.OpRestart, "running", true, nil},
		{containerization.OpLogs, "running", false, nil},
		{containerization.OpInspect, "running", false, nil},
		{containerization.OpRemove, "", false, containerization.ErrConflict},
		{containerization.OpStop, "exited", true, nil},
		{containerization.OpStop, "exited", false, nil},
		{containerization.OpRemove, "removed", true, nil},
		{containerization.OpRemove, "", false, containerization.ErrNotFound},
		{containerization.OpLogs, "", false, containerization.ErrNotFound},
	}
	var id string
	for i, s := range steps {
		var c *containerization.ContainerConfig
		if s.op == containerization.OpCreate {
			c = &cfg
		}
		if s.op == containerization.OpLogs && s.wantErr == nil {
			// The restart wrote the lines twice; wait until the second run has written them.
			testenv.Eventually(10*time.Second, func() bool {
				r, _ := containerization.ManageContainers(ctx, s.op, name, nil, opts)
				return strings.Count(r.Stdout, "ready") == 2 && strings.Count(r.Stderr, "oops") == 2
			})
		}
		res, err := containerization.ManageContainers(ctx, s.op, name, c, opts)
		if s.wantErr != nil {
			var cme *containerization.ContainerManagementError
			if !errors.Is(err, s.wantErr) || !errors.As(err, &cme) || cme.Container != name {
				t.Errorf("step %d %s: error = %v, want %v in a ContainerManagementError for %s", i, s.op, err, s.wantErr, name)
			}
			if res.Success || cme == nil || res.ErrorMessage != cme.Err.Error() {
				t.Errorf("step %d %s: result = %+v, want success false and the cause as error_message", i, s.op, res)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
		if id == "" {
			id = res.ContainerID
		}
		if !res.Success || res.ContainerID != id || res.Status != s.status || res.Changed != s.changed ||
			res.ContainerName != name || res.Operation != s.op || res.ExecutionTime <= 0 || res.ErrorMessage != "" {
			t.Errorf("step %d %s: result = %+v, want success, id %s, status %q, changed %v", i, s.op, res, id, s.status, s.changed)
		}
		switch s.op {
		case containerization.OpLogs:
			if res.Stdout != "ready\nready\n" || res.Stderr != "oops\noops\n" || !strings.Contains(res.Logs, "ready\n") || !strings.Contains(res.Logs, "oops\n") {
				t.Errorf("logs = %q / stdout %q / stderr %q, want both runs' lines split by stream", res.Logs, res.Stdout, res.Stderr)
			}
		case containerization.OpInspect:
			if d := res.Details; d == nil || d.Labels[testenv.Label] != run.ID || d.ID != res.ContainerID || d.State.Status != res.Status ||
				d.Name != res.ContainerName || d.Image == "" || d.Created.IsZero() || len(d.Command) == 0 {
				t.Errorf("inspect details = %+v, want the engine's view with our labels", res.Details)
			}
		}
	}
}

func TestManageContainersListAndMetrics(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	opts := containerization.ManageOptions{Engine: eng}
	names := []string{run.Name("a"), run.Name("b")}
	for _, n := range names {
		cfg := run.Config(testimages.Busybox, "sleep", "3600")
		if _, err := containerization.ManageContainers(ctx, containerization.OpCreate, n, &cfg, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := containerization.ManageContainers(ctx, containerization.OpStart, n, nil, opts); err != nil {
			t.Fatal(err)
		}
	}
	res, err := containerization.ManageContainers(ctx, containerization.OpList, "", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range res.Containers {
		listed = append(listed, c.Name)
	}
	for _, n := range names {
		if !slices.Contains(listed, n) {
			t.Errorf("list = %v, want %s", listed, n)
		}
	}

	one, err := containerization.GetContainerMetrics(ctx, names[0], containerization.MetricsOptions{Engine: eng})
	if err != nil || len(one) != 1 || one[0].ContainerName != names[0] || one[0].Status != "running" {
		t.Fatalf("GetContainerMetrics(%s) = %+v, %v; want one running sample", names[0], one, err)
	}
	all, err := containerization.GetContainerMetrics(ctx, "", containerization.MetricsOptions{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	var sampled []string
	for _, m := range all {
		sampled = append(sampled, m.ContainerName)
		if m.Status != "running" {
			t.Errorf("GetContainerMetrics(all) includes %s in state %s, want running ones only", m.ContainerName, m.Status)
		}
	}
	for _, n := range names {
		if !slices.Contains(sampled, n) {
			t.Errorf("GetContainerMetrics(all) = %v, want %s", sampled, n)
		}
	}
	_, err = containerization.GetContainerMetrics(ctx, run.Name("missing"), containerization.MetricsOptions{Engine: eng})
	var cme *containerization.ContainerManagementError
	if !errors.Is(err, containerization.ErrNotFound) || !errors.As(err, &cme) || cme.Op != "stats" {
		t.Errorf("GetContainerMetrics(missing) error = %v, want a stats ContainerManagementError wrapping ErrNotFound", err)
	}
}

// specFields are the field names of each structure exactly as the specification writes them.
var specFields = map[string]struct {
	value  any
	fields []string
}{
	"manage_containers":         {containerization.ContainerResult{}, []string{"operation", "container_name", "success", "container_id", "status", "execution_time", "logs", "error_message"}},
	"build_containers":          {containerization.BuildResult{}, []string{"image_name", "image_id", "build_time", "size_mb", "layers", "security_scan_passed", "vulnerabilities_found", "optimization_applied"}},
	"manage_container_registry": {containerization.RegistryResult{}, []string{"operation", "image_name", "registry_url", "success", "image_digest", "tags", "size_mb", "error_message"}},
	"optimize_containers":       {containerization.OptimizationResult{}, []string{"original_image", "optimized_image", "optimization_type", "size_reduction_mb", "performance_improvement", "security_improvements", "layers_reduced", "build_time"}},
	"ContainerConfig":           {containerization.ContainerConfig{}, []string{"image", "name", "command", "environment", "ports", "volumes", "networks", "resources", "restart_policy", "labels"}},
	"resources":                 {containerization.Resources{}, []string{"cpu_limit", "memory_limit", "cpu_reservation", "memory_reservation"}},
	"KubernetesDeployment":      {containerization.KubernetesDeployment{}, []string{"name", "namespace", "replicas", "image", "ports", "environment", "resources", "status", "pods", "services", "created_at", "last_updated"}},
	"ContainerRegistry":         {containerization.ContainerRegistry{}, []string{"url", "type", "credentials", "repositories", "security_scan_enabled", "retention_policy"}},
	"credentials":               {containerization.RegistryCredentials{}, []string{"username", "password", "token"}},
	"SecurityScanResult":        {containerization.SecurityScanResult{}, []string{"image_name", "scan_timestamp", "scan_duration", "vulnerabilities", "compliance_score", "critical_count", "high_count", "medium_count", "low_count", "recommendations", "scan_tool"}},
	"vulnerability":             {containerization.Vulnerability{}, []string{"cve_id", "severity", "package", "version", "fixed_version", "description"}},
	"ContainerMetrics":          {containerization.ContainerMetrics{}, []string{"container_name", "timestamp", "cpu_usage_percent", "memory_usage_mb", "memory_limit_mb", "network_rx_mb", "network_tx_mb", "disk_read_mb", "disk_write_mb", "uptime_seconds", "restart_count", "health_status", "performance_score"}},
}

func TestJSONFieldNamesAreTheSpecifications(t *testing.T) {
	for name, s := range specFields {
		b, err := json.Marshal(s.value)
		if err != nil {
			t.Fatalf("json.Marshal(%s) = %v", name, err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for _, f := range s.fields {
			if _, ok := got[f]; !ok {
				t.Errorf("json.Marshal(%s) = %s, lacks the specification's field %q", name, b, f)
			}
		}
	}
	// Kubernetes resources nest requests and limits with cpu and memory.
	b, _ := json.Marshal(containerization.ResourceRequirements{})
	if string(b) != `{"requests":{"cpu":"","memory":""},"limits":{"cpu":"","memory":""}}` {
		t.Errorf("json.Marshal(ResourceRequirements) = %s", b)
	}
}

func TestCredentialsNeverMarshal(t *testing.T) {
	c := containerization.RegistryCredentials{Username: "ant", Password: "canary-s3cret", Token: "canary-t0ken"}
	b, _ := json.Marshal(c)
	if strings.Contains(string(b), "canary") {
		t.Errorf("json.Marshal(credentials) = %s, leaks a secret", b)
	}
}

func second[T any](_ T, err error) error { return err }

func imageRemoveForce() client.ImageRemoveOptions {
	return client.ImageRemoveOptions{Force: true, PruneChildren: true}
}
