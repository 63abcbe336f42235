package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/codomyrmex/containerization/errdefs"
)

// Update downloads osv.dev's export of each ecosystem (<BaseURL>/<ecosystem>/all.zip, "Debian" or "npm", say)
// and imports them together, as Import does. With no ecosystems it refreshes the families the database holds
// ("Debian" for Debian:11 and Debian:12). When the server cannot be reached it fails at once with an error
// wrapping errdefs.ErrUnavailable; an ecosystem the server has no export for is an error wrapping
// errdefs.ErrNotFound. Nothing is changed unless every download succeeds.
func Update(ctx context.Context, ecosystems []string, opts Options) (Status, error) {
	dir, err := opts.dir()
	if err != nil {
		return Status{}, err
	}
	if len(ecosystems) == 0 {
		st, err := Stat(opts)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return Status{}, err
		}
		seen := map[string]bool{}
		for _, e := range st.Ecosystems {
			seen[Family(e.Name)] = true
		}
		ecosystems = sortedKeys(seen)
		if len(ecosystems) == 0 {
			return Status{}, fmt.Errorf("%w: updating the advisory database: name the ecosystems to download (Debian, npm, Go, PyPI…)",
				errdefs.ErrInvalidArgument)
		}
	}
	sort.Strings(ecosystems)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Status{}, fmt.Errorf("creating advisory database %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(dir, tmpPrefix+"download-")
	if err != nil {
		return Status{}, fmt.Errorf("creating advisory database %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)

	client := opts.httpClient()
	var srcs []source
	for i, eco := range ecosystems {
		u := strings.TrimSuffix(opts.baseURL(), "/") + "/" + url.PathEscape(eco) + "/all.zip"
		path := filepath.Join(tmp, fmt.Sprintf("%d.zip", i))
		opts.logger().Debug("downloading OSV export", "url", u)
		if err := download(ctx, client, u, path); err != nil {
			return Status{}, err
		}
		srcs = append(srcs, source{path: path, label: u})
	}
	return importSources(ctx, srcs, opts)
}

func download(ctx context.Context, client *http.Client, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: cannot reach %s (%v): without a network, import an export with `myrmex db import FILE`",
			errdefs.ErrUnavailable, u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: no OSV export at %s: check the ecosystem's name (Debian, npm, Go, PyPI, Alpine…)",
			errdefs.ErrNotFound, u)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: downloading %s: %s", errdefs.ErrUnavailable, u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", u, err)
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: downloading %s: %v", errdefs.ErrUnavailable, u, err)
	}
	return nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
