package inventory

// Package is one package found in an image.
type Package struct {
	// Name and Version are the package's own (the binary package for Debian). The Go standard library of a Go
	// binary is "stdlib", at the version of the toolchain that built it.
	Name    string `json:"name"`
	Version string `json:"version"`
	// SourceName and SourceVersion are the source package a binary package was built from, where the
	// ecosystem has one (Debian, Alpine); advisories of those ecosystems name source packages.
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Ecosystem is the OSV ecosystem: "Debian:12", "Alpine:v3.19", "Red Hat", "npm", "Go", "PyPI".
	Ecosystem string `json:"ecosystem"`
	// PURL is the package URL.
	PURL string `json:"purl"`
	// Locations are the files the package was found in, absolute in the image.
	Locations []string `json:"locations"`
	// Layer is the image layer that brought the package in.
	Layer Layer `json:"layer"`
}

// Layer identifies an image layer.
type Layer struct {
	// Index is the layer's position among the image's layers (the config's rootfs.diff_ids), from 0; the
	// history's empty entries (ENV, CMD…) do not count.
	Index   int    `json:"index"`
	DiffID  string `json:"diff_id"`
	Command string `json:"command"` // the history entry that made it, when the image records one
}
