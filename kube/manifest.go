package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
)

// Object is one object of the manifests, with where it came from.
type Object struct {
	*unstructured.Unstructured
	Source string // file:line of its document, or "stdin:line"
}

// Ref names an object as kubectl prints it: kind/name, or kind/namespace/name for namespaced ones; with the
// group for kinds outside the core group (deployment.apps/web).
func (o *Object) Ref() string { return refOf(o.GroupVersionKind(), o.GetNamespace(), o.GetName()) }

func refOf(gvk schema.GroupVersionKind, namespace, name string) string {
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	if namespace == "" {
		return k + "/" + name
	}
	return k + "/" + namespace + "/" + name
}

// manifestExt are the file names read from a directory.
var manifestExt = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// ReadManifests reads the objects of a file, of every .yaml, .yml and .json file under a directory (recursively,
// in lexical order), or of stdin when path is "-". Documents may be YAML (several per file, split by ---) or
// JSON (one or a stream); a List's items are read as objects. Empty documents are skipped. Malformed input is an
// ErrInvalidArgument naming the file and the line of the document.
func ReadManifests(path string, stdin io.Reader) ([]*Object, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no manifest path given", errdefs.ErrInvalidArgument)
	}
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		return ParseManifests(stdin, "stdin")
	}
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: manifests %s: no such file or directory", errdefs.ErrNotFound, path)
		}
		return nil, fmt.Errorf("%w: manifests %s: %v", errdefs.ErrInvalidArgument, path, err)
	}
	var files []string
	if st.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != path && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && manifestExt[strings.ToLower(filepath.Ext(p))] {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: manifests %s: %v", errdefs.ErrInvalidArgument, path, err)
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: no .yaml, .yml or .json files under %s", errdefs.ErrInvalidArgument, path)
		}
	} else {
		files = []string{path}
	}
	var all []*Object
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("%w: manifests %s: %v", errdefs.ErrInvalidArgument, f, err)
		}
		objs, err := ParseManifests(fh, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: %s holds no objects", errdefs.ErrInvalidArgument, path)
	}
	return all, nil
}

// ParseManifests reads the objects of a YAML or JSON stream; source names it in errors.
func ParseManifests(r io.Reader, source string) ([]*Object, error) {
	br := bufio.NewReader(r)
	first, skipped, err := firstNonSpace(br)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", errdefs.ErrInvalidArgument, source, err)
	}
	var out []*Object
	if first == '{' || first == '[' {
		objs, _, err := jsonStream(br, source)
		return objs, err
	}
	// The whitespace skipped goes back in front: YAML's line numbers count it.
	all, err := io.ReadAll(io.MultiReader(bytes.NewReader(skipped), br))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", errdefs.ErrInvalidArgument, source, err)
	}
	for _, d := range splitYAML(all) {
		body := bytes.TrimSpace(stripComments(d.body))
		if len(body) == 0 {
			continue
		}
		start := d.line + leadingSeparatorLines(d.body)
		if body[0] == '{' || body[0] == '[' {
			// JSON after a comment: read as the JSON stream it is (the YAML reader keeps the first value of
			// "{…}{…}" and drops the rest without a word).
			objs, notJSON, err := jsonStream(bytes.NewReader(body), fmt.Sprintf("%s:%d", source, start))
			if !notJSON {
				if err != nil {
					return nil, err
				}
				out = append(out, objs...)
				continue
			}
		}
		js, err := yaml.YAMLToJSON(d.body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: the YAML document at line %d is malformed: %v", errdefs.ErrInvalidArgument, source, start, err)
		}
		objs, err := decodeDocument(js, fmt.Sprintf("%s:%d", source, start))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func decodeDocument(js []byte, where string) ([]*Object, error) {
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var m map[string]any
	// Kubernetes' JSON decoding: whole numbers become int64, as in every unstructured object.
	if err := utiljson.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: a document must be an object with apiVersion, kind and metadata: %v", errdefs.ErrInvalidArgument, where, err)
	}
	u := &unstructured.Unstructured{Object: m}
	if u.IsList() {
		var out []*Object
		err := u.EachListItem(func(item runtime.Object) error {
			iu, ok := item.(*unstructured.Unstructured)
			if !ok {
				return fmt.Errorf("an item of the list is not an object")
			}
			o := &Object{Unstructured: iu, Source: where}
			if err := checkObject(o); err != nil {
				return err
			}
			out = append(out, o)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, where, err)
		}
		return out, nil
	}
	o := &Object{Unstructured: u, Source: where}
	if err := checkObject(o); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, where, err)
	}
	return []*Object{o}, nil
}

func checkObject(o *Object) error {
	switch {
	case o.GetAPIVersion() == "":
		return fmt.Errorf("the object has no apiVersion")
	case o.GetKind() == "":
		return fmt.Errorf("the object has no kind")
	case o.GetName() == "" && o.GetGenerateName() != "":
		return fmt.Errorf("%s uses metadata.generateName, which server-side apply cannot do: give it a name", o.GetKind())
	case o.GetName() == "":
		return fmt.Errorf("the %s has no metadata.name", o.GetKind())
	}
	if _, err := schema.ParseGroupVersion(o.GetAPIVersion()); err != nil {
		return fmt.Errorf("apiVersion %q: %v", o.GetAPIVersion(), err)
	}
	return nil
}

// firstNonSpace reads the leading whitespace of br, however long, and returns the first other byte (left in br)
// and the whitespace read; 0 at the end of the stream.
func firstNonSpace(br *bufio.Reader) (byte, []byte, error) {
	var skipped []byte
	for {
		b, err := br.Peek(1)
		if err == io.EOF {
			return 0, skipped, nil
		}
		if err != nil {
			return 0, skipped, err
		}
		c := b[0]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, skipped, nil // '#' is a YAML comment: not JSON
		}
		skipped = append(skipped, c)
		_, _ = br.ReadByte()
	}
}

// jsonStream decodes r as a stream of JSON values, each a document of objects. notJSON is set when its first
// value is not JSON at all (YAML's flow style, "{apiVersion: v1, …}"), for a caller that can read it as YAML
// instead; err is set then too.
func jsonStream(r io.Reader, where string) (objs []*Object, notJSON bool, err error) {
	dec := json.NewDecoder(r)
	for i := 1; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return objs, false, nil
		} else if err != nil {
			return nil, i == 1, fmt.Errorf("%w: %s: JSON document %d is malformed: %v", errdefs.ErrInvalidArgument, where, i, err)
		}
		o, err := decodeDocument(raw, fmt.Sprintf("%s: JSON document %d", where, i))
		if err != nil {
			return nil, false, err
		}
		objs = append(objs, o...)
	}
}

type yamlDoc struct {
	line int // the line of the document's first line (1-based)
	body []byte
}

// splitYAML splits a YAML stream at its "---" lines, keeping each document's first line number.
func splitYAML(b []byte) []yamlDoc {
	var docs []yamlDoc
	cur := yamlDoc{line: 1}
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, l := range lines {
		t := bytes.TrimRight(l, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, cur)
			cur = yamlDoc{line: i + 2}
			if rest := bytes.TrimSpace(t[3:]); len(rest) > 0 {
				cur.body = append(cur.body, append(rest, '\n')...)
				cur.line = i + 1
			}
			continue
		}
		if bytes.Equal(t, []byte("...")) {
			continue
		}
		cur.body = append(cur.body, l...)
	}
	return append(docs, cur)
}

// leadingSeparatorLines counts the lines before a document's content (a --- line, blank lines and comments).
func leadingSeparatorLines(doc []byte) int {
	n := 0
	for _, l := range bytes.SplitAfter(doc, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || bytes.HasPrefix(t, []byte("#")) || bytes.Equal(t, []byte("---")) {
			n++
			continue
		}
		break
	}
	return n
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if bytes.HasPrefix(t, []byte("#")) || bytes.Equal(t, []byte("---")) {
			continue
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
