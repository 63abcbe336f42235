// Package optimize analyses and rewrites container images for size, security and performance
// (optimize_containers).
//
// Analyze reads an image's layers once and reports, per layer, its size, the instruction that made it and its
// wasted bytes; dive's image efficiency score, wasted bytes and user-wasted percentage, computed as dive computes
// them; and Myrmex's own account of the waste a rewrite could drop: file bodies overwritten or deleted by later
// layers, package-manager caches and lists, temporary files and duplicate contents. Gate checks an analysis
// against thresholds, as dive's CI mode does (.dive-ci: lowestEfficiency, highestWastedBytes,
// highestUserWastedPercent).
//
// Rewrite makes a new image of one layer from an image's filesystem as it runs: losslessly (without what later
// layers hid or deleted, package-manager caches and temporary files), or minified to what a Profile names and
// what that needs (ELF interpreters and libraries, links, configuration files). Prober runs probes (HTTP
// requests from the container's own network namespace, commands, the image's HEALTHCHECK) against images in an
// engine, and profiles a run with the sensor of package optimize/sensor (fanotify, inside the container).
// Optimizer puts them together: analyse, profile, probe the original, rewrite, write into the engine, verify
// (the probe on both images, a scan on both); a result that fails verification is removed.
//
// # Differences from dive
//
// Dive ignores opaque-directory markers (.wh..wh..opq): the files they hide stay in its view of the image, and a
// later whiteout of such a directory counts them. Analyze honours the markers. Dive stops reading a layer at a
// whiteout of a path that no lower layer holds (the rest of that layer is left out of its figures); Analyze
// counts the whiteout as 0 bytes and goes on. On images without either, the figures are dive's to the byte,
// dive's own rules included: a whiteout counts what the directory held only when dive's view has a directory
// there (the highest layer holding the path has an entry for it that is a directory; a directory that a layer
// only implies, by holding files inside it, is none). TestAnalyzeAgreesWithDive runs dive, built from its Go
// module by scripts/dive.sh, on hand-built images and on real ones, and compares every figure.
//
// # Bounds
//
// Layers are hostile input: each is read through the context, entry names are bounded (MaxNameBytes,
// MaxNameDepth), and so are the entries per layer and per image, the bytes the files deliver per layer and per
// image, and the number of layers (AnalyzeOptions). Sparse entries are never read: their declared size counts,
// as in dive, but their content is not hashed.
package optimize
