package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/errdefs"
)

// The time sources a [Decision] names.
const (
	TimeFromAnnotation = "annotation"     // the manifest's org.opencontainers.image.created annotation
	TimeFromConfig     = "config.created" // the image config's created field, the newest of an index's images
	TimeUnknown        = "unknown"        // neither: the artifact counts as the oldest
)

// createdAnnotation is the OCI annotation for the creation time of an image or index.
const createdAnnotation = "org.opencontainers.image.created"

// Options says which registry to read and how. The zero value of every field but Registry is the documented
// default.
type Options struct {
	// Registry is the host[:port] of the registry. Loopback hosts speak plain HTTP, as go-containerregistry
	// decides; set Insecure for another plain HTTP registry.
	Registry string
	// Insecure allows plain HTTP to a registry that is not on a loopback address.
	Insecure bool
	// Repositories lists the repository paths to consider; empty means every repository of the registry's
	// catalog.
	Repositories []string
	// ExtraDigests names untagged artifacts, by repository path and digest ("sha256:…"), that Plan should
	// consider alongside the tagged ones; the distribution API cannot list them. Their repositories are
	// considered even when Repositories leaves them out. A digest that has tags after all is read as a tagged
	// artifact.
	ExtraDigests map[string][]string
	// Remote is passed to go-containerregistry on every call: authentication, transport, user agent. The ctx
	// given to Plan or Apply is appended last, so it overrides a remote.WithContext here.
	Remote []remote.Option
	// Now is the time "pushed within N days" counts back from; zero means time.Now().
	Now time.Time
	// Concurrency is the number of requests in flight at a time; zero means 8.
	Concurrency int
}

// Report is the outcome of [Plan] (a dry run) or [Apply].
type Report struct {
	// Registry is the registry that was read, as go-containerregistry names it.
	Registry string `json:"registry"`
	// DryRun is true for a plan, false once Apply has run.
	DryRun bool `json:"dry_run"`
	// PlannedAt is the time push ages were measured from.
	PlannedAt time.Time `json:"planned_at"`
	// Artifacts holds one decision per artifact, by repository in lexical order, then newest first.
	Artifacts []Decision `json:"artifacts"`
	// Notes say what the report cannot show: untagged manifests, skipped deletions, unreadable repositories.
	Notes []string `json:"notes,omitempty"`
	// Kept counts the artifacts kept.
	Kept int `json:"kept"`
	// Deleted counts, in a plan, the artifacts it would delete; after Apply, the artifacts deleted.
	Deleted int `json:"deleted"`
	// Skipped counts the deletions Apply skipped because the artifact changed since the plan.
	Skipped int `json:"skipped,omitempty"`
	// Failed counts the artifacts whose reading or deletion failed.
	Failed int `json:"failed,omitempty"`
}

// Decision is what the policy says of one artifact, and what became of it.
type Decision struct {
	// Repository is the repository path inside the registry ("team-a/app").
	Repository string `json:"repository"`
	// Digest names the artifact: its manifest's digest.
	Digest string `json:"digest"`
	// MediaType is the manifest's media type, when it was read.
	MediaType string `json:"media_type,omitempty"`
	// Tags are all the tags that pointed at the digest, sorted; empty for an untagged artifact.
	Tags []string `json:"tags"`
	// PushedAt is the push time as the package estimates it; zero when unknown.
	PushedAt time.Time `json:"pushed_at,omitzero"`
	// TimeSource is where PushedAt came from: TimeFromAnnotation, TimeFromConfig or TimeUnknown. It is empty
	// when no rule needed the time (the repository matches no rule).
	TimeSource string `json:"time_source,omitempty"`
	// Keep says whether the policy keeps the artifact; Reason says why, naming the rule.
	Keep   bool   `json:"keep"`
	Reason string `json:"reason"`
	// Deleted is set by Apply once the registry has deleted the artifact.
	Deleted bool `json:"deleted,omitempty"`
	// Skipped is set by Apply when the artifact's tags changed since the plan, or it was gone already.
	Skipped bool `json:"skipped,omitempty"`
	// Error says why reading or deleting the artifact failed. An artifact that could not be read is kept.
	Error string `json:"error,omitempty"`

	children []string // digests an index references; kept when the index is kept
}

// Plan reads the registry and decides, for each artifact, whether the policy keeps it. It deletes nothing.
//
// A repository that cannot be read (its tag list, or one of its tags) is left out of the report, since
// deleting by digest in it could take a tag Plan did not see; an artifact whose manifest cannot be read is kept.
// Plan then returns the report and an error joining those failures.
func Plan(ctx context.Context, p Policy, opts Options) (*Report, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	reg, err := opts.registry()
	if err != nil {
		return nil, err
	}
	c := opts.client(ctx)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	repos := slices.Clone(opts.Repositories)
	if len(repos) == 0 {
		if repos, err = remote.Catalog(ctx, reg, c.remote...); err != nil {
			return nil, fmt.Errorf("listing the repositories of %s: %w", reg.Name(), classify(err, reg.Name(), "the catalog"))
		}
	}
	for r, ds := range opts.ExtraDigests {
		for _, d := range ds {
			if _, err := v1.NewHash(d); err != nil {
				return nil, fmt.Errorf("%w: extra digest %q of %s: %w", errdefs.ErrInvalidArgument, d, r, err)
			}
		}
		if !slices.Contains(repos, r) {
			repos = append(repos, r)
		}
	}

	slices.Sort(repos)
	repos = slices.Compact(repos)

	report := &Report{Registry: reg.Name(), DryRun: true, PlannedAt: now, Artifacts: []Decision{}}
	var errs []error
	for _, path := range repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		repo, err := name.NewRepository(reg.Name()+"/"+path, opts.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("%w: repository %q: %w", errdefs.ErrInvalidArgument, path, err)
		}
		var rules []int
		for i, r := range p.Rules {
			if !r.Disabled && r.appliesTo(path) {
				rules = append(rules, i)
			}
		}
		arts, err := c.artifacts(repo, opts.ExtraDigests[path])
		if err != nil {
			errs = append(errs, err)
			report.Notes = append(report.Notes, fmt.Sprintf("repository %s was not read, so nothing in it is deleted: %v", path, err))
			continue
		}
		if len(rules) > 0 {
			errs = append(errs, c.pushTimes(repo, arts)...)
		}
		for i := range arts {
			arts[i].Repository = path
		}
		decide(p, rules, now, arts)
		report.Artifacts = append(report.Artifacts, arts...)
	}
	report.Notes = append(report.Notes, untaggedNote(opts.ExtraDigests))
	report.count()
	return report, errors.Join(errs...)
}

func untaggedNote(extra map[string][]string) string {
	n := 0
	for _, ds := range extra {
		n += len(ds)
	}
	return fmt.Sprintf("untagged artifacts: the distribution API lists tags, not manifests, so only the %d untagged "+
		"digests named by the caller were considered; other untagged manifests were neither kept nor deleted "+
		"(the registry's garbage collection removes them)", n)
}

// maxWithinDays bounds the days "pushed within N days" counts back: 2^30 days (2.9 million years) is before
// any time a manifest or config can record (RFC 3339 years 0000 to 9999), so a larger N keeps the same artifacts.
const maxWithinDays = 1 << 30

// pushedSince is the oldest push time "pushed within days days" keeps: days calendar days before now, in now's
// location (time.AddDate). It never multiplies a time.Duration, which would overflow from 106752 days on and keep
// nothing.
func pushedSince(now time.Time, days int) time.Time {
	return now.AddDate(0, 0, -min(days, maxWithinDays))
}

// decide fills Keep and Reason for the artifacts of one repository, given the indexes of the enabled rules that
// apply to it, and sorts them newest first.
func decide(p Policy, rules []int, now time.Time, arts []Decision) {
	slices.SortFunc(arts, newestFirst)
	if len(rules) == 0 {
		for i := range arts {
			arts[i].Keep, arts[i].Reason = true, "repository matches no rule"
		}
		return
	}
	keep := func(a *Decision, reason string) {
		if !a.Keep {
			a.Keep, a.Reason = true, reason
		}
	}
	for _, ri := range rules {
		r := p.Rules[ri]
		var selected []*Decision
		for i := range arts {
			if accessoryOf(arts[i].Tags) == "" && r.selects(arts[i].Tags) {
				selected = append(selected, &arts[i])
			}
		}
		for rank, a := range selected {
			switch {
			case r.Retain.Always:
				keep(a, fmt.Sprintf("retained by rule %d: always", ri+1))
			case r.Retain.MostRecentlyPushed > 0:
				if rank < r.Retain.MostRecentlyPushed {
					keep(a, fmt.Sprintf("retained by rule %d: most recently pushed %d (rank %d of %d)",
						ri+1, r.Retain.MostRecentlyPushed, rank+1, len(selected)))
				}
			case r.Retain.PushedWithinDays > 0:
				since := pushedSince(now, r.Retain.PushedWithinDays)
				if a.TimeSource != TimeUnknown && !a.PushedAt.Before(since) {
					keep(a, fmt.Sprintf("retained by rule %d: pushed within %d days (%s)",
						ri+1, r.Retain.PushedWithinDays, a.PushedAt.UTC().Format(time.DateOnly)))
				}
			}
		}
	}
	for i := range arts {
		if arts[i].Error != "" {
			keep(&arts[i], "kept: its manifest could not be read")
		}
	}
	// A kept index keeps what it references, down to nested indexes.
	for changed := true; changed; {
		changed = false
		for _, a := range arts {
			if !a.Keep {
				continue
			}
			for i := range arts {
				if !arts[i].Keep && slices.Contains(a.children, arts[i].Digest) {
					keep(&arts[i], fmt.Sprintf("referenced by retained index %s", a.Digest))
					changed = true
				}
			}
		}
	}
	// An accessory (a signature, an attestation, an SBOM or a scan attached by the referrers tag schema) goes
	// with its subject, as Harbor's accessories do: no rule selects it.
	for i := range arts {
		subject := accessoryOf(arts[i].Tags)
		if subject == "" || arts[i].Keep {
			continue
		}
		j := slices.IndexFunc(arts, func(a Decision) bool { return a.Digest == subject })
		switch {
		case j < 0:
			keep(&arts[i], fmt.Sprintf("accessory of %s, which is not listed (untagged or gone): kept", subject))
		case arts[j].Keep:
			keep(&arts[i], fmt.Sprintf("accessory of retained %s", subject))
		default:
			arts[i].Reason = fmt.Sprintf("accessory of %s, which is not retained", subject)
		}
	}
	for i := range arts {
		if !arts[i].Keep && arts[i].Reason == "" {
			arts[i].Reason = "not retained by any rule"
		}
	}
}

// accessoryTag is a tag the referrers tag schema (OCI 1.1) or cosign gives what refers to a digest:
// sha256-HEX, sha256-HEX.sig, .att or .sbom.
var accessoryTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.(sig|att|sbom))?$`)

// accessoryOf returns the digest an artifact is attached to when every one of its tags is an accessory tag of
// that digest, else "".
func accessoryOf(tags []string) string {
	subject := ""
	for _, t := range tags {
		m := accessoryTag.FindStringSubmatch(t)
		if m == nil || (subject != "" && subject != "sha256:"+m[1]) {
			return ""
		}
		subject = "sha256:" + m[1]
	}
	return subject
}

// newestFirst orders artifacts by push time, newest first, unknown times last, then by digest.
func newestFirst(a, b Decision) int {
	ua, ub := a.TimeSource == TimeUnknown || a.PushedAt.IsZero(), b.TimeSource == TimeUnknown || b.PushedAt.IsZero()
	switch {
	case ua != ub:
		if ua {
			return 1
		}
		return -1
	case !ua && !a.PushedAt.Equal(b.PushedAt):
		return b.PushedAt.Compare(a.PushedAt)
	}
	return cmp.Compare(a.Digest, b.Digest)
}

func (r *Report) count() {
	r.Kept, r.Deleted, r.Skipped, r.Failed = 0, 0, 0, 0
	for _, a := range r.Artifacts {
		switch {
		case a.Keep:
			r.Kept++
		case r.DryRun || a.Deleted:
			r.Deleted++
		case a.Skipped:
			r.Skipped++
		}
		if a.Error != "" {
			r.Failed++
		}
	}
}

func (o Options) nameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o Options) registry() (name.Registry, error) {
	if o.Registry == "" {
		return name.Registry{}, fmt.Errorf("%w: no registry given", errdefs.ErrInvalidArgument)
	}
	reg, err := name.NewRegistry(o.Registry, append(o.nameOptions(), name.StrictValidation)...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("%w: registry %q: %w", errdefs.ErrInvalidArgument, o.Registry, err)
	}
	return reg, nil
}

// client reads and deletes through go-containerregistry, Concurrency requests at a time.
type client struct {
	remote []remote.Option
	limit  int
}

func (o Options) client(ctx context.Context) client {
	n := o.Concurrency
	if n <= 0 {
		n = 8
	}
	return client{remote: append(slices.Clone(o.Remote), remote.WithContext(ctx)), limit: n}
}

// each runs f(0)…f(n-1), c.limit at a time.
func (c client) each(n int, f func(i int)) {
	sem := make(chan struct{}, c.limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// tags resolves every tag of repo, and returns the tags of each digest, sorted. A tag that disappears while
// being read is left out; any other failure fails the whole repository.
func (c client) tags(repo name.Repository) (map[string][]string, error) {
	tags, err := remote.List(repo, c.remote...)
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, classify(err, repo.RegistryStr(), "repository "+repo.RepositoryStr()))
	}
	digests := make([]string, len(tags))
	errs := make([]error, len(tags))
	c.each(len(tags), func(i int) {
		d, err := c.head(repo.Tag(tags[i]))
		if err != nil && !isNotFound(err) {
			errs[i] = fmt.Errorf("resolving %s:%s: %w", repo, tags[i], classify(err, repo.RegistryStr(), "tag "+tags[i]))
		}
		digests[i] = d
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	byDigest := map[string][]string{}
	for i, d := range digests {
		if d != "" {
			byDigest[d] = append(byDigest[d], tags[i])
		}
	}
	for _, ts := range byDigest {
		slices.Sort(ts)
	}
	return byDigest, nil
}

// head returns the digest ref points at, falling back to a GET for registries that answer HEAD without
// Docker-Content-Digest.
func (c client) head(ref name.Reference) (string, error) {
	desc, err := remote.Head(ref, c.remote...)
	if err != nil && !isNotFound(err) {
		var d *remote.Descriptor
		if d, err = remote.Get(ref, c.remote...); err == nil {
			desc = &d.Descriptor
		}
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// artifacts lists the artifacts of repo: the tagged ones and the extra untagged digests.
func (c client) artifacts(repo name.Repository, extra []string) ([]Decision, error) {
	byDigest, err := c.tags(repo)
	if err != nil {
		return nil, err
	}
	var arts []Decision
	for d, ts := range byDigest {
		arts = append(arts, Decision{Digest: d, Tags: ts})
	}
	for _, d := range extra {
		if _, ok := byDigest[d]; !ok {
			byDigest[d] = nil
			arts = append(arts, Decision{Digest: d, Tags: []string{}})
		}
	}
	return arts, nil
}

// pushTimes reads the manifest of each artifact for its media type, push time and, for an index, children. It
// returns the failures, also recorded in each artifact's Error.
func (c client) pushTimes(repo name.Repository, arts []Decision) []error {
	errs := make([]error, len(arts))
	c.each(len(arts), func(i int) {
		a := &arts[i]
		desc, err := remote.Get(repo.Digest(a.Digest), c.remote...)
		if err == nil {
			a.MediaType = string(desc.MediaType)
			a.PushedAt, a.TimeSource, a.children, err = c.pushTime(desc)
		}
		if err != nil {
			a.TimeSource = TimeUnknown
			errs[i] = fmt.Errorf("reading %s@%s: %w", repo.RepositoryStr(), a.Digest, classify(err, repo.RegistryStr(), "manifest "+a.Digest))
			a.Error = errs[i].Error()
		}
	})
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

// pushTime tells when the artifact desc describes was made, and where that came from.
func (c client) pushTime(desc *remote.Descriptor) (time.Time, string, []string, error) {
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return time.Time{}, TimeUnknown, nil, err
		}
		return indexTime(idx)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return time.Time{}, TimeUnknown, nil, err
		}
		t, src, err := imageTime(img)
		return t, src, nil, err
	}
	return time.Time{}, TimeUnknown, nil, nil
}

func imageTime(img v1.Image) (time.Time, string, error) {
	m, err := img.Manifest()
	if err != nil {
		return time.Time{}, TimeUnknown, err
	}
	if t, ok := annotated(m.Annotations); ok {
		return t, TimeFromAnnotation, nil
	}
	if !m.Config.MediaType.IsConfig() {
		return time.Time{}, TimeUnknown, nil // an OCI artifact: its config is not an image config
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, TimeUnknown, err
	}
	if known(cf.Created.Time) {
		return cf.Created.Time, TimeFromConfig, nil
	}
	return time.Time{}, TimeUnknown, nil
}

// indexTime is the index's annotation, or else the newest config time among its images, nested indexes
// included. Children the registry does not hold (a sparse index) are skipped.
func indexTime(idx v1.ImageIndex) (time.Time, string, []string, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return time.Time{}, TimeUnknown, nil, err
	}
	var children []string
	for _, m := range im.Manifests {
		children = append(children, m.Digest.String())
	}
	if t, ok := annotated(im.Annotations); ok {
		return t, TimeFromAnnotation, children, nil
	}
	var newest time.Time
	for _, m := range im.Manifests {
		var t time.Time
		var src string
		switch {
		case m.MediaType.IsIndex():
			child, err := idx.ImageIndex(m.Digest)
			if err == nil {
				t, src, _, err = indexTime(child)
			}
			if err != nil && !isNotFound(err) {
				return time.Time{}, TimeUnknown, children, err
			}
		case m.MediaType.IsImage():
			img, err := idx.Image(m.Digest)
			if err == nil {
				t, src, err = imageTime(img)
			}
			if err != nil && !isNotFound(err) {
				return time.Time{}, TimeUnknown, children, err
			}
		}
		if src == TimeFromConfig && t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return time.Time{}, TimeUnknown, children, nil
	}
	return newest, TimeFromConfig, children, nil
}

func annotated(annotations map[string]string) (time.Time, bool) {
	s, ok := annotations[createdAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	return t, err == nil && known(t)
}

// known rejects the zero time and the Unix epoch that reproducible builds write as created.
func known(t time.Time) bool {
	return !t.IsZero() && t.Unix() > 0
}
