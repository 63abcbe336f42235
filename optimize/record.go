package optimize

import (
	"strconv"
	"strings"
)

// The labels an optimized image carries (LabelPrefix + name): the image says itself what it was made from and
// what the rewrite changed, so that a report on it alone (myrmex report) can show the before and after, on any
// engine or registry it is copied to. They are the image's claims, read back as such (see [RecordOf]).
const (
	LabelPrefix        = "dev.codomyrmex.myrmex.optimized."
	labelSource        = "from"        // the original image as it was named
	labelSourceID      = "from.id"     // its engine image ID (the digest of its configuration)
	labelSourceDigest  = "from.digest" // its manifest digest in a registry, when the engine knows one
	labelType          = "type"
	labelLayersBefore  = "layers.before"
	labelLayersAfter   = "layers.after"
	labelFilesBefore   = "files.before"
	labelFilesAfter    = "files.after"
	labelContentBefore = "content-bytes.before"
	labelContentAfter  = "content-bytes.after"
	labelMinified      = "minified"
)

// Record is what an optimized image records of its optimization in its labels: the original and the rewrite's
// counts on both sides. The engine's sizes, the probes and the scans are measured after the image is written, so
// they are in the [Result], not in the image.
type Record struct {
	Source       string `json:"source"`
	SourceID     string `json:"source_id,omitempty"`
	SourceDigest string `json:"source_digest,omitempty"`
	Type         string `json:"optimization_type"`
	LayersBefore int    `json:"layers_before"`
	LayersAfter  int    `json:"layers_after"`
	FilesBefore  int    `json:"files_before"`
	FilesAfter   int    `json:"files_after"`
	// ContentBefore and ContentAfter are the bytes of the files the image holds as it runs.
	ContentBefore int64 `json:"content_bytes_before"`
	ContentAfter  int64 `json:"content_bytes_after"`
	Minified      bool  `json:"minified"`
}

// Labels is the record as the image's labels.
func (r *Record) Labels() map[string]string {
	l := map[string]string{
		labelSource: r.Source, labelType: r.Type,
		labelLayersBefore: strconv.Itoa(r.LayersBefore), labelLayersAfter: strconv.Itoa(r.LayersAfter),
		labelFilesBefore: strconv.Itoa(r.FilesBefore), labelFilesAfter: strconv.Itoa(r.FilesAfter),
		labelContentBefore: strconv.FormatInt(r.ContentBefore, 10), labelContentAfter: strconv.FormatInt(r.ContentAfter, 10),
		labelMinified: strconv.FormatBool(r.Minified),
	}
	if r.SourceID != "" {
		l[labelSourceID] = r.SourceID
	}
	if r.SourceDigest != "" {
		l[labelSourceDigest] = r.SourceDigest
	}
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[LabelPrefix+k] = v
	}
	return out
}

// maxLabel bounds a label value read back: an image's labels are its author's, not ours.
const maxLabel = 1024

// RecordOf reads the record an image's labels hold; nil when they hold none, or one that does not read as a
// record (a count that is not a number, a value too long).
func RecordOf(labels map[string]string) *Record {
	get := func(k string) (string, bool) {
		v, ok := labels[LabelPrefix+k]
		return v, ok && len(v) <= maxLabel && !strings.ContainsAny(v, "\x00\n")
	}
	src, ok := get(labelSource)
	if !ok || src == "" {
		return nil
	}
	r := &Record{Source: src}
	r.SourceID, _ = get(labelSourceID)
	r.SourceDigest, _ = get(labelSourceDigest)
	if r.Type, ok = get(labelType); !ok {
		return nil
	}
	for _, n := range []struct {
		key string
		dst *int64
	}{{labelContentBefore, &r.ContentBefore}, {labelContentAfter, &r.ContentAfter}} {
		v, _ := get(n.key)
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 0 {
			return nil
		}
		*n.dst = x
	}
	for _, n := range []struct {
		key string
		dst *int
	}{{labelLayersBefore, &r.LayersBefore}, {labelLayersAfter, &r.LayersAfter}, {labelFilesBefore, &r.FilesBefore}, {labelFilesAfter, &r.FilesAfter}} {
		v, _ := get(n.key)
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			return nil
		}
		*n.dst = x
	}
	m, _ := get(labelMinified)
	r.Minified = m == "true"
	return r
}
