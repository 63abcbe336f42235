package optimize_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/codomyrmex/containerization/optimize"
)

// A rewrite with a record writes it into the new image's labels, counts filled in, the image's own labels kept
// and a previous optimization's replaced; RecordOf reads it back, and refuses labels that do not read as one.
func TestRecordLabels(t *testing.T) {
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": "app", optimize.LabelPrefix + "from.digest": "sha256:old"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	rec := &optimize.Record{Source: "app:1", SourceID: "sha256:abc", Type: "size"}
	res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out, _ := res.Image.ConfigFile()
	labels := out.Config.Labels
	got := optimize.RecordOf(labels)
	want := &optimize.Record{Source: "app:1", SourceID: "sha256:abc", Type: "size", LayersBefore: 2, LayersAfter: 1,
		FilesBefore: res.FilesBefore, FilesAfter: res.FilesAfter, ContentBefore: res.ContentBefore, ContentAfter: res.ContentAfter}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RecordOf(the rewritten image's labels) = %+v, want %+v", got, want)
	}
	if labels["org.opencontainers.image.title"] != "app" || labels[optimize.LabelPrefix+"from.digest"] != "" {
		t.Errorf("labels = %v: want the image's own kept and the previous optimization's gone", labels)
	}
	if rec.LayersBefore != 0 {
		t.Error("Rewrite changed the caller's record")
	}
	for name, edit := range map[string]func(map[string]string){
		"no source":          func(l map[string]string) { delete(l, optimize.LabelPrefix+"from") },
		"a count not number": func(l map[string]string) { l[optimize.LabelPrefix+"files.after"] = "many" },
		"a negative count":   func(l map[string]string) { l[optimize.LabelPrefix+"layers.before"] = "-1" },
		"a value too long":   func(l map[string]string) { l[optimize.LabelPrefix+"type"] = string(make([]byte, 2000)) },
	} {
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		edit(l)
		if r := optimize.RecordOf(l); r != nil {
			t.Errorf("RecordOf(%s) = %+v, want nil", name, r)
		}
	}
}
