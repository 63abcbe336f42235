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
// With Options.Cache, the filter's output of each layer is kept under the layer's diff ID, once its content has
// been checked against that diff ID, and any later scan of any image that holds the layer reads it from there:
// an unchanged image is scanned without reading a layer, and a new layer on a known base costs that layer
// only. The extraction and the attribution run again on every scan, over the cached layers, so the result is
// the same as without a cache. Entries are written to a temporary name and renamed; an entry that fails its
// checksum is a miss.
//
// # Hostile images
//
// A layer is data, never a path on the host. Nothing is unpacked by name: osv-scalibr keeps the files it reads
// in one temporary file, removed before Scan returns, even on error or cancellation. Symlinks resolve inside the
// image's virtual filesystem, never on the host, and the walk does not follow them, so a package.json linked to
// a host file is not read. The filter skips, with a warning in Result.Warnings, names that leave the root,
// symlinks and hard links whose target does, device files and FIFOs, and files larger than Options.MaxFileSize
// (a file declared at a gigabyte costs the time to decompress it, no memory and no disk). A layer larger than
// Options.MaxLayerSize once decompressed, or with more than Options.MaxEntries entries, fails the scan with
// ErrLimitExceeded; a layer that is not a tar stream (a name with a NUL, a truncated or corrupt stream) fails it
// with a *LayerError wrapping errdefs.ErrInvalidArgument. An extractor that panics on a file (osv-scalibr's
// parsers meet whatever bytes an image holds) fails on that file only, with a warning; os-release lines that
// make osv-scalibr v0.5.3 panic (KEY=") are dropped before it reads them. FuzzScanLayer keeps it so; its
// corpus in testdata holds the inputs it found.
//
// The package is silent: it sets osv-scalibr's process-wide logger to discard, and reports what it skipped as
// Result.Warnings.
package inventory
