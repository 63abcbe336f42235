package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/build"
)

// contender is one way of building the Dockerfile. build returns the image it made (ID or manifest digest) and
// the file holding it as a `docker save` or OCI tarball, for verification.
type contender struct {
	key, title, builder, how string
	prune                    func(context.Context) error
	build                    func(ctx context.Context, round int, warm bool) (outcome, error)
}

type outcome struct {
	image     string // image ID, or the OCI output's manifest digest
	cacheHits int    // -1 when the contender does not say
	load      func() (v1.Image, error)
}

func (b *bench) contenders() []contender {
	tagM := "myrmex.local/bench-build:myrmex-" + b.runID
	tagC := "myrmex.local/bench-build:classic-" + b.runID
	b.engineTags = []string{tagM, tagC}
	ociOut := func(key string, round int, warm bool) string {
		return filepath.Join(b.tmp, fmt.Sprintf("%s-%d-%v.oci.tar", key, round, warm))
	}
	return []contender{
		{
			key: "myrmex-engine", title: "Myrmex build.Build, engine BuildKit", builder: "engine",
			how:   "build.Build(ctx, eng, Options{ContextPath, Tags}) over the engine's /grpc and /session, moby exporter",
			prune: b.pruneEngine,
			build: func(ctx context.Context, _ int, _ bool) (outcome, error) {
				res, err := build.Build(ctx, b.eng, build.Options{ContextPath: b.contextDir, Tags: []string{tagM}})
				if err != nil {
					return outcome{}, err
				}
				return outcome{image: res.ImageID, cacheHits: res.CacheHits, load: b.saved(ctx, res.ImageID)}, nil
			},
		},
		{
			key: "docker-classic", title: "docker build, classic builder", builder: "engine (classic)",
			how:   "DOCKER_BUILDKIT=0 docker build -q -t TAG CONTEXT (no buildx plugin is installed)",
			prune: b.pruneEngine,
			build: func(ctx context.Context, _ int, _ bool) (outcome, error) {
				out, _, err := benchkit.RunTool(ctx, []string{"DOCKER_BUILDKIT=0"}, b.docker, "build", "-q", "-t", tagC, b.contextDir)
				if err != nil {
					return outcome{}, err
				}
				id := strings.TrimSpace(out)
				return outcome{image: id, cacheHits: -1, load: b.saved(ctx, id)}, nil
			},
		},
		{
			key: "myrmex-buildkitd", title: "Myrmex build.Build, standalone buildkitd", builder: "buildkitd " + "v0.34.2",
			how:   "build.Build(ctx, nil, Options{Builder: unix://…, Output: \"oci:FILE\", BuildArgs: BASE=registry image})",
			prune: b.pruneBuildkitd,
			build: func(ctx context.Context, round int, warm bool) (outcome, error) {
				file := ociOut("myrmex", round, warm)
				res, err := build.Build(ctx, nil, build.Options{ContextPath: b.contextDir, Builder: b.bkAddr,
					Output: build.OutputOCIPrefix + file, BuildArgs: map[string]string{"BASE": b.remoteBase}})
				if err != nil {
					return outcome{}, err
				}
				o, err := b.ociOutcome(file)
				o.cacheHits = res.CacheHits
				return o, err
			},
		},
		{
			key: "buildctl", title: "buildctl build", builder: "buildkitd " + "v0.34.2",
			how: "buildctl build --frontend dockerfile.v0 --local context=DIR --local dockerfile=DIR --opt build-arg:BASE=… " +
				"--output type=oci,dest=FILE",
			prune: b.pruneBuildkitd,
			build: func(ctx context.Context, round int, warm bool) (outcome, error) {
				file := ociOut("buildctl", round, warm)
				_, _, err := benchkit.RunTool(ctx, nil, b.buildctl, "--addr", b.bkAddr, "build", "--frontend", "dockerfile.v0",
					"--local", "context="+b.contextDir, "--local", "dockerfile="+b.contextDir,
					"--opt", "build-arg:BASE="+b.remoteBase, "--output", "type=oci,dest="+file)
				if err != nil {
					return outcome{}, err
				}
				o, err := b.ociOutcome(file)
				o.cacheHits = -1
				return o, err
			},
		},
	}
}

// pruneEngine empties the engine's build cache: BuildKit's, and the classic builder's, which is the
// intermediate images under the run's tagged images.
func (b *bench) pruneEngine(ctx context.Context) error {
	if err := b.removeEngineImages(ctx); err != nil {
		return err
	}
	_, _, err := benchkit.RunTool(ctx, nil, b.docker, "builder", "prune", "-af")
	return err
}

func (b *bench) pruneBuildkitd(ctx context.Context) error {
	_, _, err := benchkit.RunTool(ctx, nil, b.buildctl, "--addr", b.bkAddr, "prune", "--all")
	return err
}

// saved returns a loader of an engine image through `docker save`, run only when verifying.
func (b *bench) saved(ctx context.Context, id string) func() (v1.Image, error) {
	return func() (v1.Image, error) {
		if !strings.HasPrefix(id, "sha256:") {
			return nil, fmt.Errorf("no image ID (got %q)", id)
		}
		file := filepath.Join(b.tmp, strings.TrimPrefix(id, "sha256:")[:12]+".tar")
		if _, err := os.Stat(file); err != nil {
			if _, _, err := benchkit.RunTool(ctx, nil, b.docker, "save", "-o", file, id); err != nil {
				return nil, err
			}
		}
		return tarball.ImageFromPath(file, nil)
	}
}

// ociOutcome reads an OCI layout tarball: its one manifest is the image.
func (b *bench) ociOutcome(file string) (outcome, error) {
	dir := strings.TrimSuffix(file, ".tar")
	if err := untar(file, dir); err != nil {
		return outcome{}, fmt.Errorf("reading OCI output %s: %w", file, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return outcome{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return outcome{}, err
	}
	if len(im.Manifests) != 1 {
		return outcome{}, fmt.Errorf("OCI output %s holds %d manifests, want 1", file, len(im.Manifests))
	}
	d := im.Manifests[0].Digest
	return outcome{image: d.String(), load: func() (v1.Image, error) { return idx.Image(d) }}, nil
}

func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			w, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, tr)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// contentDigest hashes the names and bytes of the regular files the final stage added (/out and /etc/app) in
// the image's flattened filesystem: what any builder must produce alike, unlike layer digests, which carry
// timestamps and the builder's tar layout.
func contentDigest(img v1.Image) (string, int, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	type file struct{ name, sum string }
	var files []file
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, err
		}
		n := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg || !(strings.HasPrefix(n, "out/") || strings.HasPrefix(n, "etc/app/")) {
			continue
		}
		s := sha256.New()
		if _, err := io.Copy(s, tr); err != nil {
			return "", 0, err
		}
		files = append(files, file{n, hex.EncodeToString(s.Sum(nil))})
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	all := sha256.New()
	for _, f := range files {
		fmt.Fprintf(all, "%s %s\n", f.sum, f.name)
	}
	return "sha256:" + hex.EncodeToString(all.Sum(nil)), len(files), nil
}

// measure runs every contender cold then warm, rounds times, in a random order of each round's own (b.order).
func (b *bench) measure(ctx context.Context, rep *report) error {
	cs := b.contenders()
	rep.Contenders = make([]measurement, len(cs))
	for i, c := range cs {
		rep.Contenders[i] = measurement{Key: c.key, Title: c.title, Builder: c.builder, How: c.how}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds("build", keys, b.cfg.rounds) {
		for _, i := range order {
			c, m := cs[i], &rep.Contenders[i]
			if err := c.prune(ctx); err != nil {
				return fmt.Errorf("%s: pruning: %w", c.key, err)
			}
			for _, warm := range []bool{false, true} {
				t := time.Now()
				o, err := c.build(ctx, r, warm)
				d := time.Since(t).Seconds()
				if err != nil {
					return fmt.Errorf("%s round %d warm=%v: %w", c.key, r+1, warm, err)
				}
				if err := m.verify(o); err != nil {
					return fmt.Errorf("%s round %d warm=%v: %w", c.key, r+1, warm, err)
				}
				if warm {
					m.Warm = append(m.Warm, d)
				} else {
					m.Cold = append(m.Cold, d)
				}
				m.CacheHits = append(m.CacheHits, o.cacheHits)
				benchkit.Logf("round %d %-17s %-4s %6.2fs %s", r+1, c.key, map[bool]string{false: "cold", true: "warm"}[warm], d, o.image)
			}
		}
	}
	return nil
}

// verify checks that a build made an image and that its files are those of the contender's other builds.
func (m *measurement) verify(o outcome) error {
	if !strings.HasPrefix(o.image, "sha256:") {
		return fmt.Errorf("no image came back (got %q)", o.image)
	}
	img, err := o.load()
	if err != nil {
		return fmt.Errorf("loading image %s: %w", o.image, err)
	}
	sum, n, err := contentDigest(img)
	if err != nil {
		return fmt.Errorf("reading image %s: %w", o.image, err)
	}
	if n < 400 {
		return fmt.Errorf("image %s holds %d files under /out and /etc/app, want over 400", o.image, n)
	}
	if m.Content != "" && m.Content != sum {
		return fmt.Errorf("image %s has content %s, an earlier build of the same contender %s", o.image, sum, m.Content)
	}
	m.Content, m.Files = sum, n
	m.Images = append(m.Images, o.image)
	return nil
}
