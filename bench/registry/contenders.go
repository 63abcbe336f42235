package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/registry"
)

// bench holds what every contender shares: the engine, the tools, the registries and what the setup made.
type bench struct {
	eng        *engine.Client
	docker     string
	crane      string
	cfg        config
	tmp        string // the run's directory, removed at the end
	runID      string
	dockerdPID int             // 0 when dockerd's CPU time cannot be read
	self       string          // this benchmark's executable, which runs Myrmex's operations as children
	timeBin    string          // GNU time, which reads each contender's peak memory; empty: not read
	order      *benchkit.Order // the contenders' order in every round

	// What the setup made, and what every result is checked against.
	imageID    string   // config digest: the engine's image ID, the same whoever pushes or pulls
	digest     string   // manifest digest as go-containerregistry writes the image (crane)
	srcDigest  string   // manifest digest of the source image Myrmex pushed: what copy and pull move
	layers     []string // the source image's layer digests
	srcBytes   int64    // the source image's blobs, gzip level 1: what a pull or a copy moves
	imageBytes int64    // uncompressed layers, the basis of every "image MB/s"
	src, dst   *distribution
	srcRef     name.Reference // bench/src:1 in src: what pull and copy read
	archive    string         // docker save of imageRef: what crane push and Myrmex's archive push read
	craneTar   string         // crane pull of srcRef: what docker load reads

	engineRefs       map[string]bool // engine names the run made, removed at the end
	dockerPushDigest string
	notes            []string
}

// A contender does one operation per round. prepare and check are untimed: prepare makes a fresh destination,
// check verifies the result against the registry or the engine, removes what the round made, and returns the
// bytes the contender moved (blobs or archive). Any error is fatal.
type contender struct {
	key     string // short, for JSON and derived rows
	title   string // for the table
	how     string // one line for the report
	myrmex  bool   // Myrmex in a child process (see child.go), which reports its allocations and reads
	prepare func(ctx context.Context) error
	run     func(ctx context.Context) (outcome, error)
	check   func(ctx context.Context, out outcome) (int64, error)
}

// outcome is what a contender's run reports: the digest it says it wrote or read, and what its process used
// (every contender runs as a process of its own: a CLI, or Myrmex in a child of this benchmark).
type outcome struct {
	digest string
	via    string // Myrmex's pulls: how the image reached the engine
	usage  usage
	alloc  uint64 // Myrmex's children: bytes the Go heap allocated
	read   int64  // Myrmex's children: bytes read from files and sockets
}

// sample is one timed round of a contender.
type sample struct {
	seconds, client, dockerd, registry float64 // wall and CPU seconds
	clientRSS, dockerdRSS              int64   // peak resident memory in bytes: the client process's, dockerd's over the round
	alloc                              uint64  // bytes Myrmex allocated
	read                               int64   // bytes Myrmex read (files and sockets)
	wire                               int64
}

// rounds runs every contender once per round, in a random order of the round's own (b.order), so that no
// contender is bound to run first or right after another's burst of disk writes.
func (b *bench) rounds(ctx context.Context, phase string, cs []contender) ([]measurement, error) {
	ms := make([]measurement, len(cs))
	for i, c := range cs {
		ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Myrmex: c.myrmex}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds(phase, keys, b.cfg.rounds) {
		for _, i := range order {
			s, err := b.round(ctx, cs[i])
			if err != nil {
				return nil, fmt.Errorf("round %d of %s: %w", r+1, cs[i].title, err)
			}
			ms[i].add(s)
			benchkit.Logf("%s round %d  %-34s %7.2fs  %6.1f image MB/s  cpu client %.1fs dockerd %.1fs registry %.1fs",
				phase, r+1, cs[i].title, s.seconds, float64(b.imageBytes)/1e6/s.seconds, s.client, s.dockerd, s.registry)
		}
	}
	for i := range ms {
		ms[i].summarize(b.imageBytes)
	}
	return ms, nil
}

func (b *bench) round(ctx context.Context, c contender) (sample, error) {
	var s sample
	if c.prepare != nil {
		if err := c.prepare(ctx); err != nil {
			return s, fmt.Errorf("preparing: %w", err)
		}
	}
	d0, r0 := b.dockerdCPU(), b.registryCPU()
	b.resetDockerdPeak()
	start := time.Now()
	out, err := c.run(ctx)
	s.seconds = time.Since(start).Seconds()
	s.dockerd, s.registry = b.dockerdCPU()-d0, b.registryCPU()-r0
	s.dockerdRSS = b.dockerdPeak()
	s.client, s.clientRSS = out.usage.cpu, out.usage.maxRSS
	s.alloc, s.read = out.alloc, out.read
	if err != nil {
		return s, err
	}
	s.wire, err = c.check(ctx, out)
	if err != nil {
		return s, fmt.Errorf("verifying: %w", err)
	}
	return s, nil
}

func (b *bench) dockerdCPU() float64 {
	s, _ := procCPU(b.dockerdPID)
	return s
}

func (b *bench) registryCPU() float64 {
	var s float64
	for _, d := range []*distribution{b.src, b.dst} {
		if d != nil {
			s += d.cpu()
		}
	}
	return s
}

// setup makes the image, loads it into the engine, measures the machine's limits on it, starts the registries,
// makes the docker save archive and pushes the source image that pull and copy read.
func (b *bench) setup(ctx context.Context, rep *report) error {
	t := time.Now()
	bi, err := buildImage(b.cfg.layers, b.cfg.layerMB)
	if err != nil {
		return fmt.Errorf("making the image: %w", err)
	}
	b.imageID, b.digest, b.imageBytes = bi.imageID, bi.digest, bi.bytes
	rep.Image = imageInfo{
		Reference: imageRef, ID: bi.imageID, Digest: bi.digest, Layers: b.cfg.layers, Bytes: bi.bytes, GzipBytes: bi.compressed,
		Content: fmt.Sprintf("%d layers, each a tar of %d MB of seeded ChaCha8 bytes and %d MB of access-log text (seeded PCG)",
			b.cfg.layers, b.cfg.layerMB/2, b.cfg.layerMB/2),
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "make the image in memory", Seconds: time.Since(t).Seconds()})
	benchkit.Logf("image made in %.1fs: %s, %.1f MB in %d layers, %.1f MB gzipped (level 1)", time.Since(t).Seconds(), bi.digest,
		float64(bi.bytes)/1e6, b.cfg.layers, float64(bi.compressed)/1e6)

	t = time.Now()
	if err := b.loadImage(ctx, bi); err != nil {
		return fmt.Errorf("loading the image into the engine: %w", err)
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "load it into the engine (Client.LoadImage of a tarball.Write stream)", Seconds: time.Since(t).Seconds()})
	benchkit.Logf("loaded into the engine as %s in %.1fs", imageRef, time.Since(t).Seconds())

	if b.cfg.limits {
		if rep.Limits, err = measureLimits(ctx, bi.layers, b.tmp); err != nil {
			return fmt.Errorf("measuring the machine's limits: %w", err)
		}
	}
	bi = nil // 300 MB of layers and their gzipped copies: the contenders' memory, from now on
	debug.FreeOSMemory()

	if b.src, err = startDistribution(ctx, b.cfg.distribution, b.tmp, "src"); err != nil {
		return err
	}
	if b.dst, err = startDistribution(ctx, b.cfg.distribution, b.tmp, "dst"); err != nil {
		return err
	}
	if b.srcRef, err = registry.Normalize("bench/src:1", b.src.endpoint()); err != nil {
		return err
	}

	t = time.Now()
	b.archive = filepath.Join(b.tmp, "image.tar")
	if _, _, err := benchkit.RunTool(ctx, nil, b.docker, "save", "-o", b.archive, imageRef); err != nil {
		return err
	}
	if _, err := b.checkArchive(b.archive); err != nil {
		return fmt.Errorf("docker save: %w", err)
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "docker save the shared archive", Seconds: time.Since(t).Seconds()})
	// The archive's layers are the very tarballs made above (the engine keeps their bytes): go-containerregistry
	// gives the image pushed from it the digest of the image made in memory, and every contender pushes the same.
	t = time.Now()
	res, err := registry.Push(ctx, nil, registry.SourceArchive+b.archive, b.srcRef, b.src.endpoint(), registry.PushOptions{}, registry.Options{})
	if err != nil {
		return fmt.Errorf("pushing the source image: %w", err)
	}
	// Myrmex compresses the archive's layers itself (once, with klauspost's gzip), so its manifest digest is its
	// own; the config, the layers' content and their count are checked as for every push.
	b.srcDigest = res.Digest
	if _, err := b.verifyRegistry(ctx, b.srcRef, res.Digest, res.Digest); err != nil {
		return fmt.Errorf("the source image: %w", err)
	}
	if err := b.readSource(ctx); err != nil {
		return err
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "push the source image from the archive with Myrmex", Seconds: time.Since(t).Seconds()})
	benchkit.Logf("registries up (src %s, dst %s); source image pushed in %.1fs", b.src.host, b.dst.host, time.Since(t).Seconds())
	return nil
}

// pushPhase: Myrmex from the engine and from a docker save archive, crane from the same archive (and docker save
// on its own, since crane cannot read the engine), docker push. The destination is a fresh registry each time.
func (b *bench) pushPhase(ctx context.Context) ([]measurement, error) {
	var ref name.Reference
	fresh := func(key string) func(context.Context) error {
		return func(ctx context.Context) (err error) {
			if err := b.dst.fresh(ctx); err != nil {
				return err
			}
			ref, err = registry.Normalize("bench/push-"+key+":1", b.dst.endpoint())
			return err
		}
	}
	checkGGCR := func(ctx context.Context, out outcome) (int64, error) {
		return b.verifyRegistry(ctx, ref, b.digest, out.digest)
	}
	// Myrmex's pushes carry the digest of its own compression: the registry must hold what it reported, with
	// the engine's config and every layer.
	checkMyrmex := func(ctx context.Context, out outcome) (int64, error) {
		if out.digest == "" {
			return 0, fmt.Errorf("%s: Myrmex reported no digest", ref)
		}
		return b.verifyRegistry(ctx, ref, out.digest, out.digest)
	}
	saved := filepath.Join(b.tmp, "saved.tar")
	cs := []contender{
		{
			key: "myrmex-engine", title: "Myrmex Push, from the engine", myrmex: true,
			how:     `registry.Push(ctx, eng, "` + imageRef + `", ref, …): the engine's docker save streamed: each layer gzipped and uploaded as it arrives, committed once every diff ID is checked, then the manifest`,
			prepare: fresh("myrmex-engine"),
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "push", imageRef, ref.String(), "0")
			},
			check: checkMyrmex,
		},
		{
			key: "myrmex-engine-gzip6", title: "Myrmex Push, from the engine, gzip level 6", myrmex: true,
			how:     `registry.Push(ctx, eng, "` + imageRef + `", ref, registry.PushOptions{GzipLevel: 6}, …): as above, at docker push's compression level`,
			prepare: fresh("myrmex-engine-gzip6"),
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "push", imageRef, ref.String(), "6")
			},
			check: checkMyrmex,
		},
		{
			key: "myrmex-archive", title: "Myrmex Push, from the archive", myrmex: true,
			how:     `registry.Push(ctx, nil, "docker-archive:FILE", ref, …) of the docker save archive crane pushes`,
			prepare: fresh("myrmex-archive"),
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "push", registry.SourceArchive+b.archive, ref.String(), "0")
			},
			check: checkMyrmex,
		},
		{
			key: "crane-push", title: "crane push, from the archive",
			how:     "crane push FILE REF, of the docker save archive",
			prepare: fresh("crane-push"),
			run: func(ctx context.Context) (outcome, error) {
				stdout, u, err := b.tool(ctx, b.crane, "push", b.archive, ref.String())
				return outcome{digest: findDigest(craneDigest, stdout), usage: u}, err
			},
			check: checkGGCR,
		},
		{
			key: "docker-push", title: "docker push",
			how: "docker push REF, the image tagged 127.0.0.1:PORT/… (untimed docker tag before, untag after)",
			prepare: func(ctx context.Context) error {
				if err := fresh("docker-push")(ctx); err != nil {
					return err
				}
				b.engineRefs[ref.String()] = true
				_, err := b.eng.API().ImageTag(ctx, client.ImageTagOptions{Source: imageRef, Target: ref.String()})
				return err
			},
			run: func(ctx context.Context) (outcome, error) {
				stdout, u, err := b.tool(ctx, b.docker, "push", ref.String())
				return outcome{digest: findDigest(dockerPushDigest, stdout), usage: u}, err
			},
			check: func(ctx context.Context, out outcome) (int64, error) {
				// dockerd gzips at its own level, so its digest is its own: the config (the image ID) and the layer
				// count are what must match, and the digest must be what docker said and the same every round.
				if out.digest == "" {
					return 0, errors.New("docker push printed no digest")
				}
				if b.dockerPushDigest != "" && out.digest != b.dockerPushDigest {
					b.notes = append(b.notes, fmt.Sprintf("docker push wrote %s in one round and %s in another (dockerd's gzip output changed)",
						b.dockerPushDigest, out.digest))
				}
				b.dockerPushDigest = out.digest
				n, err := b.verifyRegistry(ctx, ref, out.digest, out.digest)
				if err != nil {
					return n, err
				}
				if _, err := b.eng.API().ImageRemove(ctx, ref.String(), client.ImageRemoveOptions{}); err != nil {
					return n, fmt.Errorf("untagging %s: %w", ref, err)
				}
				delete(b.engineRefs, ref.String())
				return n, nil
			},
		},
		{
			key: "docker-save", title: "docker save (crane's input)",
			how: "docker save -o FILE " + imageRef + ": the archive crane push needs, as crane cannot read the engine",
			run: func(ctx context.Context) (outcome, error) {
				_, u, err := b.tool(ctx, b.docker, "save", "-o", saved, imageRef)
				return outcome{usage: u}, err
			},
			check: func(ctx context.Context, _ outcome) (int64, error) {
				n, err := b.checkArchive(saved)
				return n, errors.Join(err, os.Remove(saved))
			},
		},
	}
	ms, err := b.rounds(ctx, "push", cs)
	if err != nil {
		return nil, err
	}
	// Myrmex gzips each layer of a docker save archive once (go-containerregistry, and so crane, three times): the
	// bytes it read say how much reading was left: the archive once for the layers, and the compressed files.
	if m := find(ms, "myrmex-archive"); m != nil && b.imageBytes > 0 {
		b.notes = append(b.notes, fmt.Sprintf("Myrmex's push from the archive read %.0f MB from files and sockets (median): %.2f× the image's "+
			"%.0f MB of layers: each layer read and gzipped once, then its compressed file read to upload it. "+
			"crane push gzips every layer of the same archive three times.", m.medianReadMB, m.medianReadMB*1e6/float64(b.imageBytes), float64(b.imageBytes)/1e6))
	}
	return append(ms, sum(ms, "save+crane-push", "docker save + crane push", "docker-save", "crane-push", b.imageBytes)), nil
}

// copyPhase: registry to registry, from src to a fresh dst each time.
func (b *bench) copyPhase(ctx context.Context) ([]measurement, error) {
	var ref name.Reference
	fresh := func(key string) func(context.Context) error {
		return func(ctx context.Context) (err error) {
			if err := b.dst.fresh(ctx); err != nil {
				return err
			}
			ref, err = registry.Normalize("bench/copy-"+key+":1", b.dst.endpoint())
			return err
		}
	}
	check := func(ctx context.Context, out outcome) (int64, error) {
		return b.verifyRegistry(ctx, ref, b.srcDigest, out.digest)
	}
	cs := []contender{
		{
			key: "myrmex-copy", title: "Myrmex Copy", myrmex: true,
			how:     "registry.Copy(ctx, src, srcEP, …, dst, dstEP, …): remote.Write of the source's remote image, blobs streamed from registry to registry",
			prepare: fresh("myrmex-copy"),
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "copy", b.srcRef.String(), ref.String())
			},
			check: check,
		},
		{
			key: "crane-copy", title: "crane copy",
			how:     "crane copy SRC DST",
			prepare: fresh("crane-copy"),
			run: func(ctx context.Context) (outcome, error) {
				_, u, err := b.tool(ctx, b.crane, "copy", b.srcRef.String(), ref.String())
				return outcome{usage: u}, err // crane copy prints no digest: the registry's is checked
			},
			check: check,
		},
	}
	return b.rounds(ctx, "copy", cs)
}

// viaThen checks that a Myrmex pull reached the engine the way it was meant to, then checks as next does.
func viaThen(via string, next func(context.Context, outcome) (int64, error)) func(context.Context, outcome) (int64, error) {
	return func(ctx context.Context, out outcome) (int64, error) {
		if out.via != via {
			return 0, fmt.Errorf("the pull went via %q, want %q", out.via, via)
		}
		return next(ctx, out)
	}
}

// pullPhase: into the engine (Myrmex, docker pull), to a tarball (crane pull), and crane's tarball into the engine
// (docker load). The engine must hold none of the image's layers before each, or docker would skip them: the
// image is removed from it first, and after every round.
func (b *bench) pullPhase(ctx context.Context) ([]measurement, error) {
	if err := b.removeImage(ctx, b.imageID); err != nil {
		return nil, err
	}
	if err := b.expectNotInEngine(ctx); err != nil {
		return nil, err
	}
	b.craneTar = filepath.Join(b.tmp, "crane-pulled.tar")
	if _, _, err := benchkit.RunTool(ctx, nil, b.crane, "pull", b.srcRef.String(), b.craneTar); err != nil {
		return nil, err
	}
	if _, err := b.checkTarball(b.craneTar); err != nil {
		return nil, fmt.Errorf("crane pull: %w", err)
	}
	b.engineRefs[b.srcRef.String()] = true
	inEngine := func(ctx context.Context, out outcome) (int64, error) {
		if out.digest != "" && out.digest != b.srcDigest {
			return 0, fmt.Errorf("pulled digest %s, want %s", out.digest, b.srcDigest)
		}
		if err := b.expectInEngine(ctx, b.srcRef.String()); err != nil {
			return 0, err
		}
		if err := b.removeImage(ctx, b.imageID); err != nil {
			return 0, err
		}
		return b.srcBytes, nil
	}
	pulled := filepath.Join(b.tmp, "pulled.tar")
	cs := []contender{
		{
			key: "myrmex-pull", title: "Myrmex Pull, into the engine", myrmex: true,
			how: "registry.Pull(ctx, eng, ref, …), its default: the manifest read by Myrmex, the engine's own pull by that digest (POST /images/create), then a tag",
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "pull", b.srcRef.String(), string(registry.PullAuto))
			},
			check: viaThen("engine", inEngine),
		},
		{
			key: "myrmex-pull-load", title: "Myrmex Pull by load", myrmex: true,
			how: "registry.Pull with PullVia load (for a registry only Myrmex reaches): blobs fetched 4 at a time, gunzipped by Myrmex, streamed uncompressed in order into the engine's image load",
			run: func(ctx context.Context) (outcome, error) {
				return b.child(ctx, "pull", b.srcRef.String(), string(registry.PullLoad))
			},
			check: viaThen("load", inEngine),
		},
		{
			key: "docker-pull", title: "docker pull",
			how: "docker pull REF (untimed docker rmi after)",
			run: func(ctx context.Context) (outcome, error) {
				stdout, u, err := b.tool(ctx, b.docker, "pull", b.srcRef.String())
				return outcome{digest: findDigest(dockerPullDigest, stdout), usage: u}, err
			},
			check: func(ctx context.Context, out outcome) (int64, error) {
				if out.digest == "" {
					return 0, errors.New("docker pull printed no digest")
				}
				return inEngine(ctx, out)
			},
		},
		{
			key: "crane-pull", title: "crane pull, to a tarball",
			how: "crane pull REF FILE (its default tarball format: gzipped layers, as docker load reads them)",
			run: func(ctx context.Context) (outcome, error) {
				_, u, err := b.tool(ctx, b.crane, "pull", b.srcRef.String(), pulled)
				return outcome{usage: u}, err
			},
			check: func(ctx context.Context, _ outcome) (int64, error) {
				n, err := b.checkTarball(pulled)
				return n, errors.Join(err, os.Remove(pulled))
			},
		},
		{
			key: "docker-load", title: "docker load (crane's tarball)",
			how: "docker load -i FILE, of a crane pull tarball made before the rounds (untimed docker rmi after)",
			run: func(ctx context.Context) (outcome, error) {
				_, u, err := b.tool(ctx, b.docker, "load", "-i", b.craneTar)
				return outcome{usage: u}, err
			},
			check: func(ctx context.Context, out outcome) (int64, error) {
				if _, err := inEngine(ctx, out); err != nil {
					return 0, err
				}
				fi, err := os.Stat(b.craneTar)
				if err != nil {
					return 0, err
				}
				return fi.Size(), nil
			},
		},
	}
	ms, err := b.rounds(ctx, "pull", cs)
	if err != nil {
		return nil, err
	}
	return append(ms, sum(ms, "crane-pull+docker-load", "crane pull + docker load", "crane-pull", "docker-load", b.imageBytes)), nil
}

var (
	craneDigest      = regexp.MustCompile(`@(sha256:[0-9a-f]{64})`)
	dockerPushDigest = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64}) size: \d+`)
	dockerPullDigest = regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`)
)

func findDigest(re *regexp.Regexp, out string) string {
	if m := re.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// verifyRegistry reads back what a contender wrote to ref: the digest it reported and the registry's must both
// be want; the config must be the engine's image (its digest is the image ID) with every layer; and every blob
// must be in the repository at its size. It returns the bytes of the blobs: what the push moved.
func (b *bench) verifyRegistry(ctx context.Context, ref name.Reference, want, reported string) (int64, error) {
	if reported != "" && reported != want {
		return 0, fmt.Errorf("%s: reported digest %s, want %s", ref, reported, want)
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ref, err)
	}
	if desc.Digest.String() != want {
		return 0, fmt.Errorf("%s: the registry has %s, want %s", ref, desc.Digest, want)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	if m.Config.Digest.String() != b.imageID {
		return 0, fmt.Errorf("%s: config %s, want the engine's image %s", ref, m.Config.Digest, b.imageID)
	}
	if len(m.Layers) != b.cfg.layers {
		return 0, fmt.Errorf("%s: %d layers, want %d", ref, len(m.Layers), b.cfg.layers)
	}
	blobs := append(m.Layers, m.Config)
	hc := &http.Client{Timeout: 10 * time.Second}
	var total int64
	for _, d := range blobs {
		u := fmt.Sprintf("http://%s/v2/%s/blobs/%s", ref.Context().RegistryStr(), ref.Context().RepositoryStr(), d.Digest)
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != d.Size {
			return 0, fmt.Errorf("%s: blob %s: HTTP %d, %d bytes, want 200 and %d bytes", ref, d.Digest, resp.StatusCode, resp.ContentLength, d.Size)
		}
		total += d.Size
	}
	return total, nil
}

// readSource notes the source image's layer digests, which crane's tarballs must hold, and the size of its blobs:
// what a pull moves.
func (b *bench) readSource(ctx context.Context) error {
	img, err := remote.Image(b.srcRef, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	b.srcBytes = m.Config.Size
	for _, l := range m.Layers {
		b.layers = append(b.layers, l.Digest.String())
		b.srcBytes += l.Size
	}
	return nil
}

// checkArchive checks that a docker save archive holds the image, and returns its size.
func (b *bench) checkArchive(file string) (int64, error) {
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return 0, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return 0, err
	}
	if id.String() != b.imageID {
		return 0, fmt.Errorf("%s: image %s, want %s", file, id, b.imageID)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// checkTarball checks that a tarball of gzipped layers (crane pull's) holds the source image byte for byte: the
// config is the image ID, and every layer file hashes to the source's layer digest. It returns its size.
func (b *bench) checkTarball(file string) (int64, error) {
	n, err := b.checkArchive(file)
	if err != nil {
		return n, err
	}
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return n, err
	}
	m, err := img.Manifest() // hashes every layer file
	if err != nil {
		return n, err
	}
	var got []string
	for _, l := range m.Layers {
		got = append(got, l.Digest.String())
	}
	if fmt.Sprint(got) != fmt.Sprint(b.layers) {
		return n, fmt.Errorf("%s: layers %v, want %v", file, got, b.layers)
	}
	return n, nil
}

// expectInEngine checks that ref names the benchmark image in the engine.
func (b *bench) expectInEngine(ctx context.Context, ref string) error {
	res, err := b.eng.API().ImageInspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("inspecting %s in the engine: %w", ref, err)
	}
	if res.ID != b.imageID {
		return fmt.Errorf("%s in the engine is %s, want %s", ref, res.ID, b.imageID)
	}
	return nil
}

func (b *bench) expectNotInEngine(ctx context.Context) error {
	_, err := b.eng.API().ImageInspect(ctx, b.imageID)
	if err == nil {
		return fmt.Errorf("image %s is still in the engine", b.imageID)
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// removeImage removes ref (a name, or the image ID with all its names) and the layers no other image uses; what
// is already gone is not an error.
func (b *bench) removeImage(ctx context.Context, ref string) error {
	_, err := b.eng.API().ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing %s from the engine: %w", ref, err)
	}
	return nil
}

// cleanup stops the registries by their pids, removes the engine images the run made and the run's directory.
func (b *bench) cleanup(ctx context.Context) error {
	var errs []error
	for _, d := range []*distribution{b.src, b.dst} {
		if d != nil {
			errs = append(errs, d.stop())
		}
	}
	for ref := range b.engineRefs {
		errs = append(errs, b.removeImage(ctx, ref))
	}
	if b.imageID != "" {
		errs = append(errs, b.removeImage(ctx, b.imageID))
	}
	errs = append(errs, os.RemoveAll(b.tmp))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	benchkit.Logf("cleanup: registries stopped, %d engine names and the image removed, %s removed", len(b.engineRefs), b.tmp)
	return nil
}
