// Package inventory lists the packages of a container image, with the layer each came from, through
// osv-scalibr's extractors: dpkg (Debian, Ubuntu), apk (Alpine), rpm, Go binaries (their modules, and the
// standard library at the toolchain's version as "stdlib"), npm (package.json, under node_modules in
// particular) and Python (*.dist-info/METADATA, *.egg-info/PKG-INFO, eggs and wheels). Options.OSOnly keeps the
// first three: the quick scan.
//
// Ecosystems are OSV's, as osv-scalibr derives them: "Debian:12" and "Alpine:v3.19" from the image's os-release,
// "npm", "Go", "PyPI". Debian and Alpine packages carry their source package (Source: in the dpkg status, the
// apk origin), which their advisories name; a Debian package without a Source field is its own source.
//
// # Layers
//
// The image is any go-containerregistry v1.Image: from an engine (docker save read with tarball.Image), a
// registry, a tarball or an OCI layout. Its layers are read once each, as streams, through a filter that keeps
// what the extractors use (directories, links, whiteouts, os-release, and the files an extractor requires;
// executables only when they hold Go build information) and hands that to osv-scalibr's layer-scanning image
// (artifact/image/layerscanning/image.FromV1Image), a virtual filesystem per layer. The extractors walk the
// image's final filesystem; trace.PopulateLayerDetails then runs each package's extractor again on the older
// layers and attributes the package to the earliest layer from which it is present, unchanged and at the same
// path, in every later one. So a Debian package installed by the base image stays in layer 0 although each apt
// layer rewrites /var/lib/dpkg/status. Whiteouts delete files of lower layers, and opaque directories
// (.wh..wh..opq, which osv-scalibr v0.5.3 ignores) hide their content: the filter drops it from the layers below.
//
// # Cache
//
// With Options.Cache, the filter's output of each layer is kept under the layer's diff ID, once the layer's
// content has been hashed to that diff ID, and any later scan of any image that holds the layer takes it from
// there once the layer's content hashes to it again: an image may declare any diff ID for any content, so a
// warm scan reads each layer once (to hash it) but filters none, and a new layer on a known base is filtered
// alone. The extraction and the attribution run again on every scan, over the cached layers, so the result is
// the same as without a cache. Entries are written to a temporary name and renamed; an entry that fails its
// checksum is a miss. The cache holds at most Options.MaxCacheSize bytes (DefaultMaxCacheSize, 2 GiB): past
// it, the entries least recently used are removed, and a layer whose entry alone would pass it is not cached.
//
// # Hostile images
//
// A layer is data, never a path on the host. Nothing is unpacked by name: osv-scalibr keeps the files it reads
// in one temporary file, removed before Scan returns, even on error or cancellation. Symlinks resolve inside the
// image's virtual filesystem, never on the host, and the walk does not follow them, so a package.json linked to
// a host file is not read. The filter skips, with a warning in Result.Warnings, names that leave the root,
// symlinks and hard links whose target does, device files and FIFOs, sparse files (GNU type 'S' or GNU.sparse
// PAX records: a header of 512 bytes may stand for gigabytes of zeros) and files larger than Options.MaxFileSize
// (a file declared at a gigabyte costs the time to decompress it, no memory and no disk). A layer whose content
// does not hash to the diff ID the image declares fails the scan with a *LayerError wrapping ErrDiffIDMismatch.
//
// The scan's time, memory and disk are bounded; a bound passed fails the scan with ErrLimitExceeded (in a
// *LayerError when a layer passed it):
//
//   - Options.MaxLayerSize (DefaultMaxLayerSize, 32 GiB): a layer's uncompressed stream, and the bytes its files
//     deliver; Options.MaxImageSize (DefaultMaxImageSize, 64 GiB): the same summed over the image's layers.
//   - Options.MaxEntries (DefaultMaxEntries, 1Mi): tar entries in a layer.
//   - Options.MaxImageEntries (DefaultMaxImageEntries, 4Mi): what osv-scalibr holds in memory. It keeps each
//     entry the filter passes on (and each directory such an entry implies) in its layer's tree and in a view
//     of the image for each history entry from the layer's up, so an entry counts once per tree: a directory of
//     the base layer under 120 layers counts 122. osv-scalibr also spends time in the square of an entry's depth
//     on it, so an entry deeper than 16 components counts (depth/16)² times. One unit costs about 170 bytes and
//     15 µs (40,000 directories under 121 layers made 735 MiB), so the default bounds a scan near 700 MiB and
//     a minute of osv-scalibr's time; a Debian image of 200 MB needs 22,000.
//   - Options.MaxLayers (DefaultMaxLayers, 127, about Docker's own limit): the image's layers;
//     MaxHistoryEntries (1024): its history entries, empty ones included.
//   - MaxPathBytes (4096) and MaxPathComponents (256): an entry's name and link target, refused with a
//     *NameError. osv-scalibr's cost is cubic in the depth of nested directories: 1000 of them took 50 s.
//
// A layer that is not a tar stream (a name with a NUL, a truncated or corrupt stream) fails the scan with a
// *LayerError wrapping errdefs.ErrInvalidArgument. The context is checked in every loop an image can make long:
// osv-scalibr does not see it while it builds the image's filesystem, but the scan stops it before its next
// read. An extractor that panics on a file (osv-scalibr's parsers meet whatever bytes an image holds) fails on
// that file only, with a warning; os-release lines that make osv-scalibr v0.5.3 panic (KEY=") are dropped
// before it reads them. FuzzScanLayer keeps it so; its corpus in testdata holds the inputs it found.
//
// The package is silent: it sets osv-scalibr's process-wide logger to discard, and reports what it skipped as
// Result.Warnings.
package inventory
