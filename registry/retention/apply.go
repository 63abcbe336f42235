package retention

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
)

// Apply deletes the artifacts plan marked for deletion and returns a copy of the plan with Deleted, Skipped
// and Error filled in. The registry is the plan's; opts gives the remote options, and a Registry in opts must
// name the same registry.
//
// Each artifact is deleted by digest (DELETE /v2/<repo>/manifests/<digest>), after re-reading the tags of its
// repository: if the digest's tags are no longer exactly those of the plan (a new tag, a moved tag, or gone),
// the artifact is skipped and a note says why. This narrows, without closing, the window between reading and
// deleting. Indexes are deleted before the manifests of the same repository. A tag that still points at the
// digest once it is deleted (some registries keep tags apart from manifests) is deleted as well.
//
// A failure on one artifact does not stop the others; Apply returns the report and an error joining the
// failures. Artifacts already deleted by an earlier Apply of the same report are left alone.
func Apply(ctx context.Context, plan *Report, opts Options) (*Report, error) {
	if plan == nil {
		return nil, fmt.Errorf("%w: no plan to apply", errdefs.ErrInvalidArgument)
	}
	if opts.Registry != "" {
		reg, err := opts.registry()
		if err != nil {
			return nil, err
		}
		if reg.Name() != plan.Registry {
			return nil, fmt.Errorf("%w: the plan is for registry %s, not %s", errdefs.ErrInvalidArgument, plan.Registry, reg.Name())
		}
	}
	opts.Registry = plan.Registry
	reg, err := opts.registry()
	if err != nil {
		return nil, err
	}
	c := opts.client(ctx)

	out := *plan
	out.DryRun = false
	out.Artifacts = slices.Clone(plan.Artifacts)
	out.Notes = slices.Clone(plan.Notes)
	pending := map[string][]int{} // repository path → indexes in out.Artifacts
	for i := range out.Artifacts {
		if a := &out.Artifacts[i]; !a.Keep && !a.Deleted {
			a.Skipped, a.Error = false, ""
			pending[a.Repository] = append(pending[a.Repository], i)
		}
	}

	var errs []error
	for _, path := range slices.Sorted(maps.Keys(pending)) {
		repo, err := name.NewRepository(reg.Name()+"/"+path, opts.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("%w: repository %q: %w", errdefs.ErrInvalidArgument, path, err)
		}
		current, err := c.tags(repo)
		if err != nil {
			errs = append(errs, err)
			for _, i := range pending[path] {
				out.Artifacts[i].Error = err.Error()
			}
			continue
		}
		// Indexes first, so that no index is left pointing at a manifest already deleted.
		var phases [2][]int
		for _, i := range pending[path] {
			if types.MediaType(out.Artifacts[i].MediaType).IsIndex() {
				phases[0] = append(phases[0], i)
			} else {
				phases[1] = append(phases[1], i)
			}
		}
		for _, phase := range phases {
			notes := make([]string, len(phase))
			failures := make([]error, len(phase))
			c.each(len(phase), func(k int) {
				notes[k], failures[k] = c.delete(repo, &out.Artifacts[phase[k]], current[out.Artifacts[phase[k]].Digest])
			})
			for k := range phase {
				if notes[k] != "" {
					out.Notes = append(out.Notes, notes[k])
				}
				if failures[k] != nil {
					errs = append(errs, failures[k])
				}
			}
		}
	}
	out.count()
	return &out, errors.Join(errs...)
}

// delete deletes one artifact whose tags are now tags, unless they changed since the plan. It returns a note
// for a skipped artifact, and the failure if any.
func (c client) delete(repo name.Repository, a *Decision, tags []string) (string, error) {
	at := repo.RepositoryStr() + "@" + a.Digest
	if !slices.Equal(tags, a.Tags) {
		a.Skipped = true
		return fmt.Sprintf("%s was not deleted: its tags changed since the plan, from %q to %q", at, a.Tags, tags), nil
	}
	ref := repo.Digest(a.Digest)
	if len(a.Tags) == 0 {
		if _, err := remote.Head(ref, c.remote...); isNotFound(err) {
			a.Skipped = true
			return fmt.Sprintf("%s was not deleted: it is no longer in the registry", at), nil
		}
	}
	if err := remote.Delete(ref, c.remote...); err != nil {
		err = fmt.Errorf("deleting %s: %w", at, classify(err, repo.RegistryStr(), "manifest "+at))
		a.Error = err.Error()
		return "", err
	}
	a.Deleted = true
	var errs []error
	for _, t := range a.Tags {
		d, err := c.head(repo.Tag(t))
		if err == nil && d == a.Digest {
			err = remote.Delete(repo.Tag(t), c.remote...)
		}
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("%s was deleted but its tag %s remains: %w", at, t, classify(err, repo.RegistryStr(), "tag "+t)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.Error = err.Error()
		return "", err
	}
	return "", nil
}
