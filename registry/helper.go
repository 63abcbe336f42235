package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// helperClient runs a Docker credential helper (docker-credential-NAME get), as the docker CLI does.
type helperClient struct{ name string }

// Get asks the helper for the credentials of serverURL.
func (h helperClient) Get(serverURL string) (string, string, error) {
	cmd := exec.Command("docker-credential-"+h.name, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// The helper's own words, never the credentials: a failing helper prints no secret.
		return "", "", fmt.Errorf("credential helper %s: %v: %s", h.name, err, strings.TrimSpace(stderr.String()))
	}
	var out struct{ Username, Secret string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return "", "", fmt.Errorf("credential helper %s: unreadable answer", h.name)
	}
	return out.Username, out.Secret, nil
}
