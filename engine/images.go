package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/moby/moby/api/types/jsonstream"
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
	err = ReadMessages(ctx, rc, "importing "+ref, func(msg jsonstream.Message) error {
		if msg.Error != nil {
			return fmt.Errorf("importing %s: %s", ref, msg.Error.Message)
		}
		if msg.Status != "" {
			id = msg.Status
		}
		return nil
	})
	if err != nil {
		return "", err
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
	return ReadMessages(ctx, rc, "loading an image", func(msg jsonstream.Message) error {
		if msg.Error != nil {
			return fmt.Errorf("loading an image: %s", msg.Error.Message)
		}
		return nil
	})
}

// maxMessage bounds one JSON message of an engine's stream (progress messages are a few hundred bytes; a build's
// output comes in pieces of a pipe read, 32 KiB).
const maxMessage = 1 << 20

// ReadMessages reads an engine's JSON message stream (import, load, pull, the classic builder's build), one
// message per line, each bounded by 1 MiB, handing each to fn until fn fails (its error is returned as it is),
// the stream ends or ctx does. what names the operation in the stream's own errors.
func ReadMessages(ctx context.Context, r io.Reader, what string, fn func(jsonstream.Message) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxMessage)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var msg jsonstream.Message
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("%s: a message of the engine's progress: %w", what, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: a message of the engine's longer than %d bytes", what, maxMessage)
		}
		return fmt.Errorf("%s: reading the engine's progress: %w", what, err)
	}
	return nil
}

// PullProgress is one progress message of an engine's pull: a layer's ID (the first 12 hex digits of its blob's
// digest) and status ("Downloading", "Download complete", "Already exists", "Pull complete", …), with the bytes
// of the layer read so far while it downloads.
type PullProgress struct {
	ID, Status     string
	Current, Total int64
}

// PullImage has the engine pull ref from its registry itself (POST /images/create), as docker pull does: the
// engine fetches, verifies and unpacks the layers as they arrive. auth is the X-Registry-Auth header (base64url
// JSON of the credentials; empty for none). progress, when set, receives the engine's progress messages.
func (c *Client) PullImage(ctx context.Context, ref, auth string, progress func(PullProgress)) error {
	resp, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("the engine pulling %s: %w", ref, c.classifyPull(err))
	}
	defer closeQuietly(resp)
	return ReadMessages(ctx, resp, "the engine pulling "+ref, func(msg jsonstream.Message) error {
		if msg.Error != nil {
			text := printable(msg.Error.Message, 1024)
			return &errdefs.Classified{Sentinel: pullFailure(text), Err: fmt.Errorf("the engine pulling %s: %s", ref, text)}
		}
		if progress != nil && msg.ID != "" {
			p := PullProgress{ID: msg.ID, Status: msg.Status}
			if msg.Progress != nil {
				p.Current, p.Total = msg.Progress.Current, msg.Progress.Total
			}
			progress(p)
		}
		return nil
	})
}

// printable is s cut to at most n bytes, with control characters (a terminal's escapes) as spaces: an engine's
// error message often carries a registry's own text.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// TagImage gives the engine's image source the name target (repository:tag).
func (c *Client) TagImage(ctx context.Context, source, target string) error {
	if _, err := c.api.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target}); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", source, target, c.classify(err))
	}
	return nil
}

// classifyPull classifies an engine's refusal of a pull: by its status when the engine connection failed, or
// the context ended, else by its message, the status being the engine's guess of the registry's failure (dockerd
// answers 404 to a registry host it cannot resolve, 500 to one that refuses the connection).
func (c *Client) classifyPull(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), client.IsErrConnectionFailed(err):
		return c.classify(err)
	}
	text := printable(err.Error(), 1024)
	return &errdefs.Classified{Sentinel: pullFailure(text), Err: errors.New(text)}
}

// pullFailure is the category of an engine's pull failure, told from its message (the stream carries no code).
func pullFailure(msg string) error {
	m := strings.ToLower(msg)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(m, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("x509:", "tls:", "server gave http response to https client"):
		return errdefs.ErrTLS
	case has("no such host", "connection refused", "i/o timeout", "network is unreachable", "no route to host"):
		return errdefs.ErrUnavailable
	case has("unauthorized", "authentication required", "access denied", "denied:", "requested access to the resource is denied"):
		return errdefs.ErrUnauthorized
	case has("manifest unknown", "name unknown", "repository does not exist"):
		return errdefs.ErrNotFound
	case has("invalid reference format"):
		return errdefs.ErrInvalidArgument
	default: // the engine itself failing (a full disk), or what it did not say
		return errdefs.ErrUnavailable
	}
}
