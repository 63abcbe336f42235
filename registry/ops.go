package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"golang.org/x/sync/errgroup"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// Engine is the part of a container engine that push and pull need: its image store as docker-save tarballs.
// *engine.Client implements it.
type Engine interface {
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	LoadImage(ctx context.Context, tarball io.Reader) error
}

// Result is what an operation did.
type Result struct {
	// Reference is the full reference operated on (for push, the destination).
	Reference string `json:"reference"`
	// Digest is the manifest (or index) digest.
	Digest string `json:"digest,omitempty"`
	// MediaType is the manifest's media type; an index for multi-platform images.
	MediaType string `json:"media_type,omitempty"`
	// Tags are the tags written (push, tag, copy), removed (delete) or listed (list).
	Tags []string `json:"tags"`
	// Repositories are the repositories of a registry (catalog).
	Repositories []string `json:"repositories,omitempty"`
	// Size is the bytes the image takes in the registry: config and compressed layers, summed over the images
	// of an index.
	Size int64 `json:"size"`
	// Details (list, with [Options.TagDetails]) say what each tag names, for the first [MaxTagDetails] tags.
	Details []TagDetail `json:"details,omitempty"`
	// Via (pull) says how the image reached the engine: "engine" (the engine pulled it) or "load" (Myrmex
	// fetched it and loaded it); see [PullVia].
	Via string `json:"via,omitempty"`
}

// Source forms of an image to push, after skopeo's transport names.
const (
	SourceOCI     = "oci:"            // oci:DIR or oci:DIR:TAG, an OCI image layout
	SourceArchive = "docker-archive:" // docker-archive:FILE, a docker save tarball
	SourceDaemon  = "docker-daemon:"  // docker-daemon:REF, the engine's store (also any plain REF, for push)
	SourceRemote  = "docker://"       // docker://REF, a registry only (for OpenImage)
)

// OpenImage opens an image to read, to scan say, and returns a cleanup to call when done with it. src is an OCI
// layout (oci:DIR[:TAG]), a docker save tarball (docker-archive:FILE), the engine's store (docker-daemon:REF), a
// registry (docker://REF), or a plain reference: the engine's image when eng is given and holds it, else the
// registry's, as Trivy looks. From a multi-platform index, the image of opts.Platform (linux/amd64 by default)
// is returned.
func OpenImage(ctx context.Context, eng Engine, src string, opts Options) (v1.Image, func(), error) {
	remoteImage := func(s string) (v1.Image, func(), error) {
		scheme, bare := "", s
		if strings.HasPrefix(s, "http://") {
			scheme, bare = "http://", strings.TrimPrefix(s, "http://")
		}
		parsed, err := name.ParseReference(bare)
		if err != nil {
			return nil, func() {}, fmt.Errorf("%w: image %q: %v", errdefs.ErrInvalidArgument, s, err)
		}
		ep, err := ParseEndpoint(scheme+parsed.Context().RegistryStr(), opts.Kind)
		if err != nil {
			return nil, func() {}, err
		}
		ref, err := Normalize(bare, ep)
		if err != nil {
			return nil, func() {}, err
		}
		img, err := remote.Image(ref, opts.RemoteOptions(ctx, ep)...)
		if err != nil {
			return nil, func() {}, fmt.Errorf("reading %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
		}
		return img, func() {}, nil
	}
	if rest, ok := strings.CutPrefix(src, SourceRemote); ok {
		return remoteImage(rest)
	}
	plain := !strings.HasPrefix(src, SourceOCI) && !strings.HasPrefix(src, SourceArchive) && !strings.HasPrefix(src, SourceDaemon)
	if plain && eng == nil {
		return remoteImage(src)
	}
	img, cleanup, err := openSource(ctx, src, eng)
	if plain && errors.Is(err, errdefs.ErrNotFound) {
		rimg, rcleanup, rerr := remoteImage(src)
		if rerr != nil {
			return nil, rcleanup, fmt.Errorf("%s is not in the engine's store, and reading it from its registry failed: %w", src, rerr)
		}
		return rimg, rcleanup, nil
	}
	if err != nil {
		return nil, cleanup, err
	}
	if img.img != nil && img.archive != "" {
		readable, err := readableArchive(ctx, img.img, img.archive)
		if err != nil {
			cleanup()
			return nil, func() {}, err
		}
		return readable, cleanup, nil
	}
	if img.img != nil {
		return img.img, cleanup, nil
	}
	one, err := platformImage(img.idx, opts.Platform)
	if err != nil {
		cleanup()
		return nil, func() {}, err
	}
	return one, cleanup, nil
}

// platformImage picks the image for platform (linux/amd64 when nil) from an index, recursing into nested indexes.
func platformImage(idx v1.ImageIndex, platform *v1.Platform) (v1.Image, error) {
	want := v1.Platform{OS: "linux", Architecture: "amd64"}
	if platform != nil {
		want = *platform
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var fallback *v1.Descriptor
	for i, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := platformImage(child, platform); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform == nil {
				if fallback == nil {
					fallback = &im.Manifests[i]
				}
				continue
			}
			if d.Platform.Satisfies(want) {
				return idx.Image(d.Digest)
			}
		}
	}
	if fallback != nil && len(im.Manifests) == 1 {
		return idx.Image(fallback.Digest)
	}
	return nil, fmt.Errorf("%w: no image for platform %s in the index", errdefs.ErrNotFound, want)
}

// image is an image or an index, whichever a source or a registry holds.
type image struct {
	img     v1.Image
	idx     v1.ImageIndex
	archive string // the docker save file the image was read from, if any
	tmp     string // a directory of compressed layers to remove when done
}

// precompress gzips the uncompressed layers of an image read from a docker save archive once, in parallel, so
// that a push does not compress them three times (see the precompress function).
func (i *image) precompress(ctx context.Context, src string, level int) error {
	if i.img == nil || i.archive == "" || strings.HasPrefix(src, SourceOCI) {
		return nil
	}
	if ok, err := uncompressedArchive(i.archive); err != nil || !ok {
		return err
	}
	dir, err := os.MkdirTemp("", "myrmex-layers-")
	if err != nil {
		return err
	}
	i.tmp = dir
	img, err := precompress(ctx, i.img, dir, runtime.NumCPU(), level)
	if err != nil {
		return err
	}
	i.img = img
	return nil
}

func (i *image) cleanup() {
	if i.tmp != "" {
		os.RemoveAll(i.tmp)
	}
}

func (i image) taggable() remote.Taggable {
	if i.idx != nil {
		return i.idx
	}
	return i.img
}

func (i image) digest() (v1.Hash, error) {
	if i.idx != nil {
		return i.idx.Digest()
	}
	return i.img.Digest()
}

func (i image) mediaType() string {
	var mt types.MediaType
	if i.idx != nil {
		mt, _ = i.idx.MediaType()
	} else {
		mt, _ = i.img.MediaType()
	}
	return string(mt)
}

// size sums config and layer sizes from the manifests.
func (i image) size() (int64, error) {
	if i.img != nil {
		return imageSize(i.img)
	}
	im, err := i.idx.IndexManifest()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := i.idx.Image(d.Digest)
		if err != nil {
			return 0, err
		}
		n, err := imageSize(img)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}

// openSource opens the image to push, and a cleanup to call when done with it.
func openSource(ctx context.Context, src string, eng Engine) (image, func(), error) {
	none := func() {}
	switch {
	case strings.HasPrefix(src, SourceOCI):
		dir, tag := strings.TrimPrefix(src, SourceOCI), ""
		if i := strings.LastIndexByte(dir, ':'); i > 0 {
			dir, tag = dir[:i], dir[i+1:]
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return image{}, none, fmt.Errorf("%w: OCI layout %s: %v", errdefs.ErrNotFound, dir, err)
		}
		if tag == "" {
			// The whole layout's index: a multi-platform image stays whole.
			im, err := idx.IndexManifest()
			if err != nil {
				return image{}, none, err
			}
			if len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex() {
				child, err := idx.ImageIndex(im.Manifests[0].Digest)
				return image{idx: child}, none, err
			}
			if len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsImage() {
				img, err := idx.Image(im.Manifests[0].Digest)
				return image{img: img}, none, err
			}
			return image{idx: idx}, none, nil
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return image{}, none, err
		}
		for _, d := range im.Manifests {
			if d.Annotations["org.opencontainers.image.ref.name"] != tag {
				continue
			}
			if d.MediaType.IsIndex() {
				child, err := idx.ImageIndex(d.Digest)
				return image{idx: child}, none, err
			}
			img, err := idx.Image(d.Digest)
			return image{img: img}, none, err
		}
		return image{}, none, fmt.Errorf("%w: no image tagged %q in OCI layout %s", errdefs.ErrNotFound, tag, dir)
	case strings.HasPrefix(src, SourceArchive):
		file := strings.TrimPrefix(src, SourceArchive)
		if _, err := os.Stat(file); err != nil {
			return image{}, none, fmt.Errorf("%w: archive %s: %v", errdefs.ErrNotFound, file, err)
		}
		img, err := tarball.ImageFromPath(file, nil)
		if err != nil {
			return image{}, none, fmt.Errorf("%w: archive %s is not a docker save archive: %v", errdefs.ErrInvalidArgument, file, err)
		}
		return image{img: img, archive: file}, none, nil
	}
	ref := strings.TrimPrefix(src, SourceDaemon)
	if eng == nil {
		return image{}, none, fmt.Errorf("%w: pushing %s from the engine needs an engine", errdefs.ErrInvalidArgument, ref)
	}
	// The engine saves the image as a tarball; go-containerregistry reads it more than once, so it goes to a
	// temporary file first.
	rc, err := eng.SaveImage(ctx, ref)
	if err != nil {
		return image{}, none, err
	}
	defer rc.Close()
	dir, err := os.MkdirTemp("", "myrmex-push-")
	if err != nil {
		return image{}, none, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	file := filepath.Join(dir, "image.tar")
	f, err := os.Create(file)
	if err == nil {
		_, err = io.Copy(f, rc)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return image{}, none, fmt.Errorf("saving %s from the engine: %w", ref, err)
	}
	// An image ID ("sha256:…", or its short form) reads as a tag but names none in the archive: the archive of
	// one image is read as that image.
	tag, err := name.NewTag(ref)
	var tagp *name.Tag
	if err == nil && !imageID.MatchString(ref) {
		tagp = &tag
	}
	img, err := tarball.ImageFromPath(file, tagp)
	if err != nil {
		cleanup()
		return image{}, none, fmt.Errorf("reading %s from the engine: %w", ref, err)
	}
	return image{img: img, archive: file}, cleanup, nil
}

// imageID matches an engine's image ID, full or short.
var imageID = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|[0-9a-f]{12,64})$`)

// PushOptions tunes [Push].
type PushOptions struct {
	// Tags are more tags to give the pushed image in the destination repository.
	Tags []string
	// GzipLevel is the gzip level of layers that Myrmex compresses itself (an image from the engine or a docker
	// save archive): 1 (fastest, the default when 0) to 9 (smallest); docker push uses 6.
	GzipLevel int
}

// Validate checks the tags and the gzip level, as Push does before it reads anything; a caller that must open
// an engine first checks them before that.
func (po PushOptions) Validate() error {
	if _, err := validTags(po.Tags); err != nil {
		return err
	}
	if po.GzipLevel < 0 || po.GzipLevel > 9 {
		return fmt.Errorf("%w: gzip level %d: want 1 to 9 (0: the default, 1)", errdefs.ErrInvalidArgument, po.GzipLevel)
	}
	return nil
}

// Push writes the image src to dst. src is a reference in the engine's store (or docker-daemon:REF), an OCI
// layout (oci:DIR, oci:DIR:TAG; a multi-platform index is pushed whole), or a docker save tarball
// (docker-archive:FILE). The manifest is written last, so a push that fails part-way leaves dst as it was.
//
// From the engine, the image is pushed as the engine's docker save streams it: each layer gzipped and uploaded
// as it arrives, checked against its diff ID before any blob is committed (see pushFromEngine); nothing goes to
// disk, and every layer is sent, as its compressed digest is known only once it is sent. From a layout or an
// archive, blobs the registry has are skipped.
func Push(ctx context.Context, eng Engine, src string, dst name.Reference, ep Endpoint, po PushOptions, opts Options) (res Result, err error) {
	res = Result{Reference: dst.String(), Tags: []string{}}
	r := opts.relay()
	defer func() { r.end(err) }()
	if err := po.Validate(); err != nil {
		return res, err
	}
	tags := po.Tags
	if eng != nil && !IsLocalSource(src) {
		img, err := pushFromEngine(ctx, eng, strings.TrimPrefix(src, SourceDaemon), dst, ep, po.GzipLevel, opts, r)
		if rerr := (registryError{}); errors.As(err, &rerr) {
			return res, fmt.Errorf("pushing to %s: %w", dst, Classify(rerr.err, ep.Host, "repository "+dst.Context().RepositoryStr()))
		}
		if err != nil {
			return res, err
		}
		return finishWrite(dst, img, tags, ep, opts.RemoteOptions(ctx, ep), res)
	}
	img, cleanup, err := openSource(ctx, src, eng)
	if err != nil {
		return res, err
	}
	defer cleanup()
	if err := img.precompress(ctx, src, po.GzipLevel); err != nil {
		return res, fmt.Errorf("preparing %s: %w", src, err)
	}
	defer img.cleanup()
	ropts := opts.RemoteOptions(ctx, ep)
	write := r.write(ropts, opts.transport())
	switch {
	case img.idx != nil:
		err = remote.WriteIndex(dst, img.idx, write...)
	case opts.LayerProgress != nil:
		var p *progressImage
		if p, err = withLayerProgress(img.img, opts.LayerProgress); err == nil {
			if err = remote.Write(dst, p, write...); err == nil {
				p.finish()
			}
		}
	default:
		err = remote.Write(dst, img.img, write...)
	}
	if err != nil {
		return res, fmt.Errorf("pushing to %s: %w", dst, Classify(err, ep.Host, "repository "+dst.Context().RepositoryStr()))
	}
	return finishWrite(dst, img, tags, ep, ropts, res)
}

// finishWrite adds the extra tags and fills the result.
func finishWrite(dst name.Reference, img image, tags []string, ep Endpoint, ropts []remote.Option, res Result) (Result, error) {
	d, err := img.digest()
	if err != nil {
		return res, err
	}
	res.Digest, res.MediaType = d.String(), img.mediaType()
	if t, ok := dst.(name.Tag); ok {
		res.Tags = append(res.Tags, t.TagStr())
	}
	for _, t := range tags {
		tag := dst.Context().Tag(t)
		if err := remote.Tag(tag, img.taggable(), ropts...); err != nil {
			return res, fmt.Errorf("tagging %s: %w", tag, Classify(err, ep.Host, "repository "+dst.Context().RepositoryStr()))
		}
		res.Tags = append(res.Tags, t)
	}
	res.Size, err = img.size()
	return res, err
}

func validTags(tags []string) ([]string, error) {
	for _, t := range tags {
		if _, err := name.NewTag("x:" + t); err != nil || t == "" {
			return nil, fmt.Errorf("%w: tag %q: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", errdefs.ErrInvalidArgument, t)
		}
	}
	return tags, nil
}

// get reads what ref names: an image or an index.
func get(ref name.Reference, ep Endpoint, ropts []remote.Option) (image, *remote.Descriptor, error) {
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return image{}, nil, Classify(err, ep.Host, describeRef(ref))
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		return image{idx: idx}, desc, err
	}
	img, err := desc.Image()
	return image{img: img}, desc, err
}

func describeRef(ref name.Reference) string {
	if _, ok := ref.(name.Digest); ok {
		return "manifest " + ref.String()
	}
	return "tag " + ref.String()
}

// PullVia says how [Pull] lands an image in the engine.
type PullVia string

const (
	// PullAuto has the engine pull the image itself, and when its pull fails (it does not resolve, reach or
	// trust the registry, refuses the credentials, …), fetches the image and loads it; also when credentials are
	// needed and the connection to the engine is neither local nor TLS, so that they stay in this process.
	PullAuto PullVia = ""
	// PullEngine has the engine pull the image itself (POST /images/create), as docker pull does, by the digest
	// Myrmex read: it fetches, verifies and unpacks each layer as it arrives. The engine must reach and trust the
	// registry.
	PullEngine PullVia = "engine"
	// PullLoad fetches the image (blobs opts.Jobs at a time, each verified) and streams it into the engine's image
	// load uncompressed: for registries only Myrmex reaches (a CA of its own, a proxy in Options.Transport).
	PullLoad PullVia = "load"
)

// Validate says whether v is one of the three.
func (v PullVia) Validate() error {
	switch v {
	case PullAuto, PullEngine, PullLoad:
		return nil
	}
	return fmt.Errorf("%w: pull via %q: want engine, load or empty (the engine when it can, else load)", errdefs.ErrInvalidArgument, string(v))
}

// EnginePuller is an engine that pulls images itself; [*engine.Client] is one.
type EnginePuller interface {
	Engine
	PullImage(ctx context.Context, ref, auth string, progress func(engine.PullProgress)) error
	TagImage(ctx context.Context, source, target string) error
}

// Pull reads ref and lands it in the engine's store under that name. For a multi-platform index, the image of
// opts.Platform (linux/amd64 by default) is pulled. opts.PullVia says how (see [PullVia]): by default the engine
// pulls the image itself, by the digest Myrmex read (so the engine gets those bytes or nothing, whichever
// registry it reaches under that name), then tags it; when the engine cannot, layers are fetched opts.Jobs at a
// time and handed to the engine's image load uncompressed, in order, as they arrive (see loadTarball), a
// temporary directory holding the layers in flight. [Result.Via] says which. A fallback's progress counts from
// zero again.
func Pull(ctx context.Context, eng Engine, ref name.Reference, ep Endpoint, opts Options) (res Result, err error) {
	res = Result{Reference: ref.String(), Tags: []string{}}
	r := opts.relay()
	defer func() { r.end(err) }()
	if eng == nil {
		return res, fmt.Errorf("%w: pull lands images in an engine, and none was given", errdefs.ErrInvalidArgument)
	}
	if err := opts.PullVia.Validate(); err != nil {
		return res, err
	}
	puller, canPull := eng.(EnginePuller)
	if opts.PullVia == PullEngine && !canPull {
		return res, fmt.Errorf("%w: pull via the engine: this engine (%T) does not pull images itself", errdefs.ErrInvalidArgument, eng)
	}
	ropts := opts.RemoteOptions(ctx, ep)
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return res, fmt.Errorf("pulling %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		// The engine needs a name to load under; a digest reference loads under the repository and "latest"
		// would lie, so it uses the digest's hex as the tag.
		tag = ref.Context().Tag(strings.TrimPrefix(ref.Identifier(), "sha256:")[:12])
	}
	if canPull && opts.PullVia != PullLoad {
		auth, err := engineAuth(ctx, tag.Context(), ep, opts)
		if err != nil {
			return res, err
		}
		if auth != "" && opts.PullVia == PullAuto && !privateEngine(eng) {
			// Credentials stay in this process unless the connection to the engine is local or TLS.
			opts.logger().Debug("the engine's connection is neither local nor TLS: fetching and loading the image", "ref", ref.String())
		} else {
			inEngine, perr := pullByEngine(ctx, puller, img, tag, auth, r)
			if perr == nil {
				res.Via = string(PullEngine)
				return pulled(res, img, tag)
			}
			if inEngine || opts.PullVia == PullEngine || ctx.Err() != nil {
				return res, fmt.Errorf("pulling %s: %w", ref, perr)
			}
			opts.logger().Debug("the engine could not pull the image; fetching and loading it instead", "ref", ref.String(), "err", perr)
		}
	}
	res.Via = string(PullLoad)
	dir, err := os.MkdirTemp("", "myrmex-pull-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	pr, pw := io.Pipe()
	written := make(chan struct{})
	var writeErr error
	go func() {
		defer close(written)
		// loadTarball reports on the relay's channel but never closes it; r.end does, after this returns.
		writeErr = loadTarball(ctx, img, tag, pw, dir, jobs, r)
		pw.CloseWithError(writeErr)
	}()
	defer func() { pr.Close(); <-written }()
	if err := eng.LoadImage(ctx, pr); err != nil {
		pr.CloseWithError(err)
		<-written
		if writeErr != nil && !errors.Is(writeErr, io.ErrClosedPipe) {
			// The engine stopped reading because the image stopped coming: what went wrong is the registry's
			// answer (a blob cut short, or bytes that do not match their digest), not the engine.
			return res, fmt.Errorf("pulling %s: %w", ref, Classify(writeErr, ep.Host, describeRef(ref)))
		}
		return res, fmt.Errorf("pulling %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
	}
	return pulled(res, img, tag)
}

// pulled completes the result of a pull of img under tag.
func pulled(res Result, img v1.Image, tag name.Tag) (Result, error) {
	d, err := img.Digest()
	if err != nil {
		return res, err
	}
	res.Digest, res.Tags = d.String(), []string{tag.TagStr()}
	if mt, err := img.MediaType(); err == nil {
		res.MediaType = string(mt)
	}
	res.Size, err = imageSize(img)
	return res, err
}

// Tag gives the image at src more tags in its own repository, without moving any blob: the manifest (or the
// whole index) is written again under each tag.
func Tag(ctx context.Context, src name.Reference, tags []string, ep Endpoint, opts Options) (Result, error) {
	res := Result{Reference: src.String(), Tags: []string{}}
	if len(tags) == 0 {
		return res, fmt.Errorf("%w: tag needs at least one new tag", errdefs.ErrInvalidArgument)
	}
	if _, err := validTags(tags); err != nil {
		return res, err
	}
	ropts := opts.RemoteOptions(ctx, ep)
	img, desc, err := get(src, ep, ropts)
	if err != nil {
		return res, fmt.Errorf("tagging %s: %w", src, err)
	}
	for _, t := range tags {
		tag := src.Context().Tag(t)
		if err := remote.Tag(tag, desc, ropts...); err != nil {
			return res, fmt.Errorf("tagging %s: %w", tag, Classify(err, ep.Host, "repository "+src.Context().RepositoryStr()))
		}
		res.Tags = append(res.Tags, t)
	}
	res.Digest, res.MediaType = desc.Digest.String(), string(desc.MediaType)
	res.Size, err = img.size()
	return res, err
}

// Copy writes the image or index at src to dst, registry to registry, keeping its digest: a multi-platform
// index is copied whole. Blobs dst has are skipped, and blobs in another repository of the same registry are
// mounted rather than uploaded where the registry allows.
func Copy(ctx context.Context, src name.Reference, srcEP Endpoint, srcOpts Options, dst name.Reference, dstEP Endpoint, dstOpts Options) (res Result, err error) {
	res = Result{Reference: dst.String(), Tags: []string{}}
	r := dstOpts.relay()
	defer func() { r.end(err) }()
	img, _, err := get(src, srcEP, srcOpts.RemoteOptions(ctx, srcEP))
	if err != nil {
		return res, fmt.Errorf("copying %s: %w", src, err)
	}
	ropts := dstOpts.RemoteOptions(ctx, dstEP)
	write := r.write(ropts, dstOpts.transport())
	if img.idx != nil {
		err = remote.WriteIndex(dst, img.idx, write...)
	} else {
		err = remote.Write(dst, img.img, write...)
	}
	if err != nil {
		if corruptRead(err) {
			// The bytes that failed their digest were read from the source.
			return res, fmt.Errorf("copying %s: %w", src, Classify(err, srcEP.Host, describeRef(src)))
		}
		return res, fmt.Errorf("copying to %s: %w", dst, Classify(err, dstEP.Host, "repository "+dst.Context().RepositoryStr()))
	}
	return finishWrite(dst, img, nil, dstEP, ropts, res)
}

// ListTags returns the tags of a repository, sorted, reading every page; with opts.TagDetails, also what the
// first [MaxTagDetails] of them name (digest, media type, size), their manifests read a few at a time. A tag
// whose manifest cannot be read has its error in its detail, and does not fail the listing.
func ListTags(ctx context.Context, repo name.Repository, ep Endpoint, opts Options) (Result, error) {
	res := Result{Reference: repo.String(), Tags: []string{}}
	tags, err := remote.List(repo, opts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return res, fmt.Errorf("listing tags of %s: %w", repo, Classify(err, ep.Host, "repository "+repo.RepositoryStr()))
	}
	slices.Sort(tags)
	res.Tags = append(res.Tags, tags...)
	if opts.TagDetails {
		res.Details = describeTags(ctx, repo, res.Tags, ep, opts)
	}
	return res, nil
}

// Catalog returns the repositories of a registry, where the registry allows it (Docker Hub, ECR and GCR do not).
func Catalog(ctx context.Context, ep Endpoint, opts Options) (Result, error) {
	res := Result{Reference: ep.Host, Tags: []string{}, Repositories: []string{}}
	reg, err := name.NewRegistry(ep.Host, ep.nameOptions()...)
	if err != nil {
		return res, fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	repos, err := remote.Catalog(ctx, reg, opts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return res, fmt.Errorf("listing repositories of %s: %w", ep.Host, Classify(err, ep.Host, "the catalog"))
	}
	slices.Sort(repos)
	res.Repositories = append(res.Repositories, repos...)
	return res, nil
}

// tagsOf returns the tags of repo that name digest, sorted.
func tagsOf(repo name.Repository, digest v1.Hash, ropts []remote.Option) ([]string, error) {
	all, err := remote.List(repo, ropts...)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		tags = []string{}
		g    errgroup.Group
	)
	g.SetLimit(8)
	for _, t := range all {
		g.Go(func() error {
			d, err := remote.Head(repo.Tag(t), ropts...)
			if err != nil {
				return nil // a tag deleted meanwhile does not name it
			}
			if d.Digest == digest {
				mu.Lock()
				tags = append(tags, t)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	slices.Sort(tags)
	return tags, nil
}

// placeholderAnnotation marks the manifest that deleting a tag alone writes and deletes again.
const placeholderAnnotation = "io.codomyrmex.myrmex.tag-delete"

// Delete removes what ref names. A digest (repo@sha256:…) deletes the manifest, and with it every tag that
// points to it. A tag deletes that tag alone: other tags of the same image stay. The distribution API deletes
// manifests only, so the tag is first pointed at a placeholder manifest of its own, which is then deleted (how
// regclient does it); if that delete fails, the tag is put back where it was, and nothing is lost. Deleting
// what does not exist wraps [errdefs.ErrNotFound].
func Delete(ctx context.Context, ref name.Reference, ep Endpoint, opts Options) (Result, error) {
	res := Result{Reference: ref.String(), Tags: []string{}}
	ropts := opts.RemoteOptions(ctx, ep)
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return res, fmt.Errorf("deleting %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
	}
	res.Digest, res.MediaType, res.Size = desc.Digest.String(), string(desc.MediaType), desc.Size
	tag, isTag := ref.(name.Tag)
	if !isTag {
		// The tags that name the manifest go with it. CNCF distribution untags them itself; other registries
		// keep tags as entries of their own, which are deleted here, so that the outcome is the same everywhere.
		tags, err := tagsOf(ref.Context(), desc.Digest, ropts)
		if err != nil {
			return res, fmt.Errorf("deleting %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
		}
		if err := remote.Delete(ref, ropts...); err != nil {
			return res, fmt.Errorf("deleting %s: %w", ref, Classify(err, ep.Host, describeRef(ref)))
		}
		for _, t := range tags {
			tr := ref.Context().Tag(t)
			if d, err := remote.Head(tr, ropts...); err == nil && d.Digest == desc.Digest {
				if err := remote.Delete(tr, ropts...); err != nil {
					return res, fmt.Errorf("deleting %s: the manifest is gone but tag %s stays: %w", ref, t, Classify(err, ep.Host, describeRef(tr)))
				}
			}
		}
		res.Tags = tags
		return res, nil
	}

	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	placeholder := mutate.Annotations(empty.Image, map[string]string{placeholderAnnotation: hex.EncodeToString(nonce)}).(v1.Image)
	pd, err := placeholder.Digest()
	if err != nil {
		return res, err
	}
	if err := remote.Write(tag, placeholder, ropts...); err != nil {
		return res, fmt.Errorf("deleting tag %s: %w", tag, Classify(err, ep.Host, describeRef(ref)))
	}
	placeholderRef := tag.Context().Digest(pd.String())
	// An OCI 1.1 registry deletes the tag itself; one that reads a tag delete as a manifest delete removes the
	// placeholder, which only this tag names; CNCF distribution 2.x refuses it, and deleting the placeholder by
	// digest untags it there.
	err = remote.Delete(tag, ropts...)
	if err != nil {
		err = remote.Delete(placeholderRef, ropts...)
	} else {
		_ = remote.Delete(placeholderRef, ropts...) // the placeholder may outlive its tag; best effort
	}
	if err == nil {
		if _, herr := remote.Head(tag, ropts...); herr == nil {
			err = fmt.Errorf("%w: the registry kept the tag after its manifest was deleted", errdefs.ErrNotImplemented)
		}
	}
	if err != nil {
		cause := Classify(err, ep.Host, describeRef(ref))
		// Put the tag back on the image it named, byte for byte.
		if rerr := remote.Tag(tag, desc, ropts...); rerr != nil {
			return res, fmt.Errorf("deleting tag %s: %w; and putting it back on %s failed: %v (it now names a placeholder %s)",
				tag, cause, desc.Digest, rerr, pd)
		}
		return res, fmt.Errorf("deleting tag %s (left as it was): %w", tag, cause)
	}
	res.Tags = []string{tag.TagStr()}
	return res, nil
}
