package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
)

// ImportImage makes an image from a root filesystem tarball, as docker import does, applying Dockerfile
// instructions such as "CMD", "ENV" or "HEALTHCHECK" given in changes. It returns the image ID.
func (c *Client) ImportImage(ctx context.Context, rootfs io.Reader, ref string, changes []string) (string, error) {
	rc, err := c.api.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: changes})
	if err != nil {
		return "", fmt.Errorf("importing %s: %w", ref, c.classify(err))
	}
	defer closeQuietly(rc)
	var id string
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("importing %s: %w", ref, err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("importing %s: %s", ref, msg.Error)
		}
		if msg.Status != "" {
			id = msg.Status
		}
	}
	return id, nil
}

// ImageExists reports whether the engine's store holds ref.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.api.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if err = c.classify(err); errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return false, err
}
