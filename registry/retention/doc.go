// Package retention plans and applies tag retention policies against an OCI distribution registry, with the
// model Harbor users know from its Tag Retention rules: a policy says what to keep, never what to delete, and
// every artifact of a repository that the policy talks about and does not keep is deleted. Harbor's documentation:
// https://goharbor.io/docs/latest/working-with-projects/working-with-images/create-tag-retention-rules/
//
// # Semantics
//
// A [Rule] has three filters, applied in Harbor's order: the repositories it applies to (matching or excluding
// a doublestar pattern, "{a,b}" or Harbor's "a,b" for alternation), a retention template (keep the N most
// recently pushed artifacts, keep the artifacts pushed within the last N days, or keep always), and the tags it
// selects (matching or excluding a pattern). The unit is the artifact: a manifest digest in a repository, with
// all the tags that point at it.
//
//   - Rules are OR-ed: an artifact is kept if any enabled rule keeps it. Disabled rules are ignored entirely.
//   - Counts and ages are per repository, as in Harbor's example 1: "most recently pushed 10" keeps ten in each
//     repository the rule applies to, not ten across them.
//   - A rule selects an artifact through its tags, as Harbor's doublestar selector does: "matches" selects an
//     artifact if any of its tags matches, "excludes" if any of its tags does not match. An artifact with several
//     tags is therefore kept whole if one of its tags is kept, and deleting it removes all its tags.
//   - An artifact in a repository that no enabled rule applies to is kept, with the reason "repository matches no
//     rule". Harbor does the same: its launcher starts a retention job only for the repositories that some
//     enabled rule selects, so a policy never deletes what it does not talk about.
//   - An artifact referenced by a kept index (a platform image of a multi-platform image, say) is kept too, so
//     that retention never leaves a kept index pointing at a deleted manifest.
//
// Harbor's "most recently pulled" templates have no counterpart: the distribution API records no pulls.
//
// Patterns are matched against the repository path inside the registry ("team-a/app"), since a plain registry
// has no Harbor projects, and against tag names. An empty pattern is an error rather than Harbor's "match all":
// write "**" to mean every repository or every tag.
//
// # Push time
//
// The distribution API records no push time. The package uses, in order: the manifest's
// "org.opencontainers.image.created" annotation (time source "annotation"); for an image, its config's "created"
// field, and for an index, the newest "created" among its images (time source "config.created"); otherwise the
// time is unknown (time source "unknown"). Both record when the image was built, which stands in for when it was
// pushed: an old build pushed today counts as old. A created time at the Unix epoch, which reproducible builds (ko, Bazel,
// Nix) write on purpose, counts as unknown. An artifact of unknown push time sorts as the oldest for "most
// recently pushed" and is never kept by "pushed within N days". Every [Decision] says which source it used.
//
// # Untagged artifacts
//
// The distribution API lists tags, not manifests: a manifest that no tag points at is invisible to this
// package. A rule's Untagged flag therefore applies only to the untagged digests the caller names in
// [Options.ExtraDigests]; such a digest in a repository the policy talks about is deleted unless a rule with
// Untagged set keeps it, as in Harbor. Other untagged manifests are neither kept nor deleted; the registry's own
// garbage collection is the tool for them. Every [Report] carries a note saying so.
//
// # Plan and apply
//
// [Plan] reads the registry and decides, deleting nothing: it is Harbor's dry run. [Apply] deletes what a plan
// marked for deletion, by digest, after checking that the tags of each digest are still those the plan saw, so
// that an image tagged after the plan is not deleted by it.
package retention
