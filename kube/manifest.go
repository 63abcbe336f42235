package kube

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

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

// The bounds of what ReadManifests reads: manifests come from anywhere (a chart's output, a pipe, a repository
// checkout) and all of them are held in memory before anything is applied. Nesting is bounded by the parsers
// themselves (10,000 levels, in YAML and in JSON) and YAML aliases by the YAML parser's expansion limit; both
// are refusals too.
const (
	// MaxManifestBytes is what all the files (or stdin) may hold together.
	MaxManifestBytes = 64 << 20
	// MaxManifestFiles is how many files a directory may hold for ReadManifests.
	MaxManifestFiles = 10_000
	// MaxObjects is how many objects the manifests may hold, List items included.
	MaxObjects = 10_000
	// MaxObjectBytes is the largest object, as JSON: the Kubernetes API server refuses a request body larger
	// than 3 MiB, so a larger object could only fail part-way through an apply.
	MaxObjectBytes = 3 << 20
)

// ErrLimitExceeded is the refusal of manifests past one of the bounds above.
var ErrLimitExceeded = fmt.Errorf("manifest limit exceeded: %w", errdefs.ErrInvalidArgument)

// budget is what is left of the bounds while the manifests are read.
type budget struct {
	bytes   int64 // left of MaxManifestBytes
	objects int   // read so far
}

func newBudget() *budget { return &budget{bytes: MaxManifestBytes} }

// read reads r whole, within what is left of the byte budget.
func (b *budget) read(r io.Reader, source string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, b.bytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", errdefs.ErrInvalidArgument, source, err)
	}
	if int64(len(data)) > b.bytes {
		return nil, fmt.Errorf("%w: %s: the manifests hold more than %d MiB together (MaxManifestBytes)", ErrLimitExceeded, source, MaxManifestBytes>>20)
	}
	b.bytes -= int64(len(data))
	return data, nil
}

// add counts n more objects.
func (b *budget) add(n int, where string) error {
	b.objects += n
	if b.objects > MaxObjects {
		return fmt.Errorf("%w: %s: the manifests hold more than %d objects (MaxObjects)", ErrLimitExceeded, where, MaxObjects)
	}
	return nil
}

// ReadManifests reads the objects of a file, of every .yaml, .yml and .json file under a directory (recursively,
// in lexical order), or of stdin when path is "-". Documents may be YAML (several per file, split by ---) or
// JSON (one or a stream); a List's items are read as objects. Empty documents are skipped. Malformed input is an
// ErrInvalidArgument naming the file and the line of the document; input past the bounds above (MaxManifestBytes,
// MaxManifestFiles, MaxObjects, MaxObjectBytes) is an ErrLimitExceeded. Files found in a directory are read only
// when they are regular files (or links to one); a path given by name may be a pipe (-f <(helm template …)).
func ReadManifests(path string, stdin io.Reader) ([]*Object, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no manifest path given", errdefs.ErrInvalidArgument)
	}
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		return newBudget().parse(stdin, "stdin")
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
			if d.IsDir() || !manifestExt[strings.ToLower(filepath.Ext(p))] {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				// A link is followed to what it names, which must be a regular file too.
				st, err := os.Stat(p)
				if err != nil || !st.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil // a device, socket or pipe with a manifest's name is not read: it could block forever
			}
			if len(files) == MaxManifestFiles {
				return fmt.Errorf("%w: more than %d manifest files (MaxManifestFiles)", ErrLimitExceeded, MaxManifestFiles)
			}
			files = append(files, p)
			return nil
		})
		if errors.Is(err, ErrLimitExceeded) {
			return nil, fmt.Errorf("%w (under %s)", err, path)
		}
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
	b := newBudget()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("%w: manifests %s: %v", errdefs.ErrInvalidArgument, f, err)
		}
		objs, err := b.parse(fh, f)
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

// ParseManifests reads the objects of a YAML or JSON stream, within the bounds of ReadManifests; source names it
// in errors.
func ParseManifests(r io.Reader, source string) ([]*Object, error) {
	return newBudget().parse(r, source)
}

func (b *budget) parse(r io.Reader, source string) ([]*Object, error) {
	all, err := b.read(r, source)
	if err != nil {
		return nil, err
	}
	if all, err = fromUTF16(all, source); err != nil {
		return nil, err
	}
	var out []*Object
	if first := bytes.TrimLeft(all, " \t\r\n"); len(first) > 0 && (first[0] == '{' || first[0] == '[') {
		return b.jsonStream(bytes.NewReader(all), source)
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
			objs, err := b.jsonStream(bytes.NewReader(body), fmt.Sprintf("%s:%d", source, start))
			if !errors.Is(err, errNotJSON) {
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
		objs, err := b.decodeDocument(js, fmt.Sprintf("%s:%d", source, start))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func (b *budget) decodeDocument(js []byte, where string) ([]*Object, error) {
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
			if len(js) > MaxObjectBytes {
				// Only a list larger than an object can be allowed to be can hold one too large.
				item, err := iu.MarshalJSON()
				if err != nil {
					return err
				}
				if err := checkObjectSize(o, len(item), where); err != nil {
					return err
				}
			}
			if err := b.add(1, where); err != nil {
				return err
			}
			out = append(out, o)
			return nil
		})
		if errors.Is(err, ErrLimitExceeded) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, where, err)
		}
		return out, nil
	}
	o := &Object{Unstructured: u, Source: where}
	if err := checkObject(o); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, where, err)
	}
	if err := checkObjectSize(o, len(js), where); err != nil {
		return nil, err
	}
	if err := b.add(1, where); err != nil {
		return nil, err
	}
	return []*Object{o}, nil
}

func checkObjectSize(o *Object, n int, where string) error {
	if n > MaxObjectBytes {
		return fmt.Errorf("%w: %s: %s %s is %d bytes as JSON, more than the %d MiB the API server accepts (MaxObjectBytes)",
			ErrLimitExceeded, where, o.GetKind(), o.GetName(), n, MaxObjectBytes>>20)
	}
	return nil
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

// fromUTF16 returns a stream that starts with a UTF-16 byte-order mark (what Windows PowerShell's > writes) as
// UTF-8. The YAML reader decodes UTF-16 itself, but the stream is split into documents first, on UTF-8 "---"
// lines: read as it was, a UTF-16 file of several documents gave its first object only.
func fromUTF16(b []byte, source string) ([]byte, error) {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		order = binary.LittleEndian
	case bytes.HasPrefix(b, []byte{0xfe, 0xff}):
		order = binary.BigEndian
	default:
		return b, nil
	}
	b = b[2:]
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%w: %s: UTF-16 text of an odd number of bytes", errdefs.ErrInvalidArgument, source)
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = order.Uint16(b[2*i:])
	}
	out := make([]byte, 0, len(b))
	for _, r := range utf16.Decode(units) {
		if r == utf8.RuneError {
			return nil, fmt.Errorf("%w: %s: UTF-16 text with an unpaired surrogate", errdefs.ErrInvalidArgument, source)
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}

// errNotJSON marks a stream whose first value is not JSON at all (YAML's flow style, "{apiVersion: v1, …}"), for
// a caller that can read it as YAML instead.
var errNotJSON = errors.New("not JSON")

// jsonStream decodes r as a stream of JSON values, each a document of objects. When the first value is not JSON,
// the error wraps errNotJSON as well.
func (b *budget) jsonStream(r io.Reader, where string) ([]*Object, error) {
	var objs []*Object
	dec := json.NewDecoder(r)
	for i := 1; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return objs, nil
		} else if err != nil {
			err = fmt.Errorf("%w: %s: JSON document %d is malformed: %v", errdefs.ErrInvalidArgument, where, i, err)
			if i == 1 {
				err = errors.Join(err, errNotJSON)
			}
			return nil, err
		}
		o, err := b.decodeDocument(raw, fmt.Sprintf("%s: JSON document %d", where, i))
		if err != nil {
			return nil, err
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
