package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/engine"
)

// pullByEngine has the engine pull img by its digest, with the credentials auth, then tags it: a registry the
// engine reaches under the same name holds those bytes or fails the pull, never other ones. The engine's progress
// is relayed as compressed bytes of the image. pulled says whether the engine holds the image (a failure then
// is the tag's).
func pullByEngine(ctx context.Context, eng EnginePuller, img v1.Image, tag name.Tag, auth string, r *relay) (pulled bool, err error) {
	d, err := img.Digest()
	if err != nil {
		return false, err
	}
	repo := engineName(tag.Context())
	src := repo + "@" + d.String()
	prog, err := newEngineProgress(img, r)
	if err != nil {
		return false, err
	}
	if err := eng.PullImage(ctx, src, auth, prog.report); err != nil {
		return false, err
	}
	if err := eng.TagImage(ctx, src, repo+":"+tag.TagStr()); err != nil {
		return true, err
	}
	prog.finish()
	return true, nil
}

// privateEngine says whether what is sent to eng stays between this process and it (see
// [engine.Client.Private]); an engine that does not say is taken as private.
func privateEngine(eng Engine) bool {
	if p, ok := eng.(interface{ Private() bool }); ok {
		return p.Private()
	}
	return true
}

// engineName is repo as the engine names it: Docker Hub's host is docker.io there, index.docker.io here.
func engineName(repo name.Repository) string {
	if repo.RegistryStr() == name.DefaultRegistry {
		return "docker.io/" + repo.RepositoryStr()
	}
	return repo.Name()
}

// engineAuth is the X-Registry-Auth header of the engine's pull: the credentials Myrmex resolves for repo, as
// base64url JSON in the engine's field names; empty when anonymous.
func engineAuth(ctx context.Context, repo name.Repository, ep Endpoint, opts Options) (string, error) {
	var a authn.Authenticator
	if opts.Auth != nil {
		a = authn.FromConfig(*opts.Auth)
	} else {
		var err error
		if a, err = authn.Resolve(ctx, opts.keychain(ep.Kind), repo); err != nil {
			return "", fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
		}
	}
	if a == authn.Anonymous {
		return "", nil
	}
	cfg, err := authn.Authorization(ctx, a)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	if *cfg == (authn.AuthConfig{}) {
		return "", nil
	}
	b, err := json.Marshal(struct {
		Username      string `json:"username,omitempty"`
		Password      string `json:"password,omitempty"`
		Auth          string `json:"auth,omitempty"`
		ServerAddress string `json:"serveraddress,omitempty"`
		IdentityToken string `json:"identitytoken,omitempty"`
		RegistryToken string `json:"registrytoken,omitempty"`
	}{cfg.Username, cfg.Password, cfg.Auth, repo.RegistryStr(), cfg.IdentityToken, cfg.RegistryToken})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// engineProgress turns the engine's per-layer messages into the image's compressed bytes moved: a layer counts
// its bytes read while it downloads, and its whole size once downloaded, or found in the engine already.
type engineProgress struct {
	r     *relay
	size  map[string]int64 // by the first 12 hex digits of the layer's digest, as the engine names layers
	done  map[string]int64
	total int64
	last  int64
}

func newEngineProgress(img v1.Image, r *relay) (*engineProgress, error) {
	p := &engineProgress{r: r, size: map[string]int64{}, done: map[string]int64{}}
	if r == nil {
		return p, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		p.size[d.Hex[:min(12, len(d.Hex))]] = n
		p.total += n
	}
	return p, nil
}

// finish reports every byte in: the engine holds the image, whether it downloaded a layer or had it (an engine
// that holds the whole image says nothing of its layers).
func (p *engineProgress) finish() {
	if p.r != nil && p.total > 0 && p.last != p.total {
		p.last = p.total
		p.r.ch <- v1.Update{Total: p.total, Complete: p.total}
	}
}

func (p *engineProgress) report(m engine.PullProgress) {
	size, ok := p.size[m.ID]
	if p.r == nil || !ok {
		return
	}
	switch {
	case m.Status == "Downloading":
		p.done[m.ID] = max(0, min(m.Current, size))
	case strings.HasPrefix(m.Status, "Download complete"), strings.HasPrefix(m.Status, "Already exists"),
		strings.HasPrefix(m.Status, "Verifying"), strings.HasPrefix(m.Status, "Extracting"), strings.HasPrefix(m.Status, "Pull complete"):
		p.done[m.ID] = size
	default:
		return
	}
	var sum int64
	for _, n := range p.done {
		sum += n
	}
	if sum != p.last {
		p.last = sum
		p.r.ch <- v1.Update{Total: p.total, Complete: sum}
	}
}
