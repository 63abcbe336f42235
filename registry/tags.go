package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TagDetail is one tag of a repository and what it names, as [ListTags] reads it with [Options.TagDetails].
type TagDetail struct {
	Tag string `json:"tag"`
	// Digest is the manifest's (or index's) digest; MediaType its media type.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"media_type,omitempty"`
	// Size is the bytes the image takes in the registry: config and compressed layers, summed over the images
	// of an index (as [Result.Size]).
	Size int64 `json:"size"`
	// Platforms are the platforms of an index's images ("linux/amd64"), in the index's order.
	Platforms []string `json:"platforms,omitempty"`
	// Error says why the tag was not read: deleted meanwhile, refused, or out of time. The other fields are then
	// empty.
	Error string `json:"error,omitempty"`
}

// MaxTagDetails bounds the tags [ListTags] reads the manifests of (the first ones, in the tags' sorted order);
// the tags after them are listed without details.
const MaxTagDetails = 500

// tagDetailJobs is how many manifests are read at once.
const tagDetailJobs = 8

// maxIndexImages bounds the images of one index whose manifests are read for its size.
const maxIndexImages = 64

// describeTags reads what each tag of repo names, tagDetailJobs at a time, at most MaxTagDetails of them. A tag
// that cannot be read (deleted meanwhile, refused, ctx done) gets its Error and the others are still read: a
// listing is not failed by one tag.
func describeTags(ctx context.Context, repo name.Repository, tags []string, ep Endpoint, opts Options) []TagDetail {
	tags = tags[:min(len(tags), MaxTagDetails)]
	out := make([]TagDetail, len(tags))
	ropts := opts.RemoteOptions(ctx, ep)
	sem := make(chan struct{}, tagDetailJobs)
	var wg sync.WaitGroup
	for i, tag := range tags {
		out[i].Tag = tag
		if err := ctx.Err(); err != nil {
			out[i].Error = "not read: " + err.Error()
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := describeTag(&out[i], repo.Tag(tag), ep, ropts); err != nil {
				out[i] = TagDetail{Tag: tag, Error: err.Error()}
			}
		})
	}
	wg.Wait()
	return out
}

func describeTag(d *TagDetail, ref name.Tag, ep Endpoint, ropts []remote.Option) error {
	img, desc, err := get(ref, ep, ropts)
	if err != nil {
		return err
	}
	d.Digest, d.MediaType = desc.Digest.String(), string(desc.MediaType)
	if img.idx != nil {
		im, err := img.idx.IndexManifest()
		if err != nil {
			return Classify(err, ep.Host, describeRef(ref))
		}
		if len(im.Manifests) > maxIndexImages {
			return fmt.Errorf("index %s holds %d manifests: its size is read for at most %d", d.Digest, len(im.Manifests), maxIndexImages)
		}
		for _, m := range im.Manifests {
			if m.Platform != nil && m.MediaType.IsImage() {
				d.Platforms = append(d.Platforms, m.Platform.String())
			}
		}
	}
	if d.Size, err = img.size(); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return Classify(err, ep.Host, describeRef(ref))
	}
	return nil
}
