package kube_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/kube"
)

// fuzzManifestSeeds are manifests as kubectl users write them, in YAML and JSON, and malformed ones.
var fuzzManifestSeeds = []string{
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n",
	"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 2\n" +
		"  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n" +
		"    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod}\nspec:\n  ports: [{port: 80}]\n",
	"# leading comment\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n...\n",
	"--- apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: x}\n",
	`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`,
	`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}]}`,
	"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n",
	`[{"apiVersion":"v1"}]`,
	"",
	"   \n\t\r\n",
	"null\n",
	"apiVersion: v1\nkind: ConfigMap\n",
	"apiVersion: v1\nmetadata: {name: a}\n",
	"kind: ConfigMap\nmetadata: {name: a}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n",
	"apiVersion: a/b/c\nkind: X\nmetadata: {name: a}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {n: 1.0, big: 12345678901234567890, f: 1e3}\n",
	"- a\n- b\n",
	"key: [unclosed\n",
	"apiVersion: v1\nkind: List\nitems: [1, 2]\n",
	"x: &a {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\napiVersion: v1\nkind: List\nitems: [*a, *a]\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n{bad\n",
	"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}} trailing",
	"\ufeffapiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
	"apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: a}\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: b}\r\n",
	`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"X","metadata":{"name":"a"},"items":[]}]}`,
	"apiVersion: example.com/v1\nkind: Playlist\nmetadata: {name: a}\nitems: []\n",
	strings.Repeat(" ", 5000) + `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`,
}

// parse reads data the way `myrmex kube apply -f -` does.
func fuzzReadStdin(data []byte) ([]*kube.Object, error) {
	return kube.ReadManifests("-", bytes.NewReader(data))
}

// fuzzCanonical is the objects' contents as JSON, one per object, for comparing two readings.
func fuzzCanonical(t *testing.T, objs []*kube.Object) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatalf("marshalling %s: %v", o.Ref(), err)
		}
		out = append(out, string(b))
	}
	return out
}

// FuzzReadManifests checks the manifest reader (kube.ReadManifests from a reader, which is kube.ParseManifests)
// on arbitrary YAML or JSON streams: a refusal wraps errdefs.ErrInvalidArgument; every object returned has a
// kind, a valid apiVersion, a name and its source; no input yields more objects than it has bytes; the two entry
// points agree; blank lines (more than a read buffer's worth) before the stream change nothing, and a comment
// line before it changes nothing or makes it a refusal; and the objects written back as a JSON stream, and as a
// YAML stream, read back to the same objects (but for an object with a top-level items field, which on its own
// is read as a List). Its bounds (kube.MaxManifestBytes and the rest) lie far beyond what the fuzzer makes, and a
// refusal past them is an ErrInvalidArgument too.
func FuzzReadManifests(f *testing.F) {
	for _, s := range fuzzManifestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := fuzzReadStdin(data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ReadManifests error %v does not wrap ErrInvalidArgument", err)
			}
			if objs != nil {
				t.Fatalf("ReadManifests returned %d objects with the error %v", len(objs), err)
			}
			return
		}
		if len(objs) > len(data) {
			t.Fatalf("%d bytes read as %d objects", len(data), len(objs))
		}
		for i, o := range objs {
			if o == nil || o.Unstructured == nil {
				t.Fatalf("object %d is nil", i)
			}
			if o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
				t.Fatalf("object %d lacks a kind, apiVersion or name: %v", i, o.Object)
			}
			if _, err := schema.ParseGroupVersion(o.GetAPIVersion()); err != nil {
				t.Fatalf("object %d has apiVersion %q: %v", i, o.GetAPIVersion(), err)
			}
			if !strings.HasPrefix(o.Source, "stdin") {
				t.Fatalf("object %d has the source %q", i, o.Source)
			}
		}
		want := fuzzCanonical(t, objs)

		direct, err := kube.ParseManifests(bytes.NewReader(data), "stdin")
		if err != nil || strings.Join(fuzzCanonical(t, direct), "\n") != strings.Join(want, "\n") {
			t.Fatalf("ParseManifests disagrees with ReadManifests(-): %v", err)
		}

		// Blank lines or a comment line before the stream do not change what it holds: after blank lines (more
		// than a read buffer's worth) it reads the same, and after a comment it reads the same or is refused.
		// (A byte-order mark is one only at the start: UTF-8's, or UTF-16's, which the YAML reader decodes.)
		if !bytes.HasPrefix(data, []byte("\ufeff")) && !bytes.HasPrefix(data, []byte{0xff, 0xfe}) && !bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
			for _, prefix := range []string{strings.Repeat("\n", 5000), "# a comment\n"} {
				moved, err := fuzzReadStdin(append([]byte(prefix), data...))
				blank := strings.TrimSpace(prefix) == ""
				if err != nil && blank {
					t.Fatalf("after %d blank lines the stream is refused: %v", len(prefix), err)
				}
				if err == nil && strings.Join(fuzzCanonical(t, moved), "\n") != strings.Join(want, "\n") {
					t.Fatalf("after %q the stream reads as\n%s\nwant\n%s", prefix[:min(len(prefix), 12)],
						strings.Join(fuzzCanonical(t, moved), "\n"), strings.Join(want, "\n"))
				}
			}
		}

		for _, o := range objs {
			if _, ok := o.Object["items"]; ok {
				// An item of a List that has an items field of its own is read as an object, but the same
				// document on its own is read as a List (as kubectl does): it does not round-trip.
				return
			}
		}
		var js, ys bytes.Buffer
		for i, o := range objs {
			b, _ := json.Marshal(o.Object)
			js.Write(b)
			js.WriteByte('\n')
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatalf("object %d as YAML: %v", i, err)
			}
			ys.WriteString("---\n")
			ys.Write(y)
		}
		for form, stream := range map[string][]byte{"JSON": js.Bytes(), "YAML": ys.Bytes()} {
			again, err := fuzzReadStdin(stream)
			if err != nil {
				t.Fatalf("the objects written back as a %s stream do not read: %v\n%s", form, err, stream)
			}
			if got := fuzzCanonical(t, again); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("the objects written back as a %s stream read as\n%s\nwant\n%s", form,
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	})
}
