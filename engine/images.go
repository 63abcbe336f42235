package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

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

// ImageInfo is what the engine says of an image in its store.
type ImageInfo struct {
	// ID is the image's ID (the digest of its configuration); RepoDigests its manifest digests in the registries
	// it was pushed to or pulled from (repo@sha256:…).
	ID          string
	RepoDigests []string
	Labels      map[string]string
	// Size is the image's size as the engine counts it (its layers unpacked), in bytes.
	Size int64
}

// InspectImage returns what the engine says of ref; ErrNotFound when its store does not hold it.
func (c *Client) InspectImage(ctx context.Context, ref string) (*ImageInfo, error) {
	ins, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("inspecting image %s: %w", ref, c.classify(err))
	}
	info := &ImageInfo{ID: ins.ID, RepoDigests: ins.RepoDigests, Size: ins.Size}
	if ins.Config != nil {
		info.Labels = ins.Config.Labels
	}
	return info, nil
}

// SaveImage streams the engine's image ref as a docker-save tarball. The caller closes the stream.
func (c *Client) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	if ok, err := c.ImageExists(ctx, ref); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("image %q is not in the engine's store: %w", ref, errdefs.ErrNotFound)
	}
	rc, err := c.api.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, fmt.Errorf("saving %s: %w", ref, c.classify(err))
	}
	return rc, nil
}

// SaveImageFile writes the engine's image ref as a docker-save tarball to file, created or truncated.
func (c *Client) SaveImageFile(ctx context.Context, ref, file string) error {
	rc, err := c.SaveImage(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		return errors.Join(fmt.Errorf("saving %s: %w", ref, err), f.Close())
	}
	return f.Close()
}

// LoadImage loads a docker-save tarball into the engine's store.
func (c *Client) LoadImage(ctx context.Context, tarball io.Reader) error {
	rc, err := c.api.ImageLoad(ctx, tarball, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("loading an image: %w", c.classify(err))
	}
	defer closeQuietly(rc)
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("loading an image: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("loading an image: %s", msg.Error)
		}
	}
}
