// Package strictyaml reads the small YAML files Myrmex takes from users (a policy, a pipeline) as hostile input:
// bounded in size and depth, one document, no aliases, no key left without a value, no field the type does not
// have, and each error naming its line.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Options bound a document.
type Options struct {
	// MaxSize is the largest document in bytes; MaxDepth the deepest nesting.
	MaxSize, MaxDepth int
	// What names the document in messages: "a policy", "a pipeline".
	What string
	// Friendly, when set, rewrites one type error of the decoder (yaml.v3's "line N: field x not found in type
	// T") for people.
	Friendly func(msg string) string
}

// Decode checks data and decodes it into v; the root node is returned for messages that name a field's line
// ([Line]). The errors are plain: the caller wraps them with its own class and name.
func Decode(data []byte, v any, o Options) (*yaml.Node, error) {
	if len(data) > o.MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", o.MaxSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8 text")
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty")
		}
		return nil, errors.New(message(err, o.Friendly))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document: %s file holds one", o.What)
	}
	if err := check(&root, 0, o); err != nil {
		return nil, err
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(v); err != nil {
		return nil, errors.New(message(err, o.Friendly))
	}
	return &root, nil
}

// check bounds the document: depth, aliases (a billion laughs is refused, not expanded), keys without values.
func check(n *yaml.Node, depth int, o Options) error {
	if depth > o.MaxDepth {
		return fmt.Errorf("line %d: nested deeper than %s can be", n.Line, o.What)
	}
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: YAML aliases are not allowed in %s", n.Line, o.What)
	}
	if n.Kind == yaml.MappingNode {
		// A key without a value reads as the field left out, which is rarely what was meant.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
				return fmt.Errorf("line %d: %s has no value: write one, or leave the key out", n.Content[i].Line, n.Content[i].Value)
			}
		}
	}
	for _, c := range n.Content {
		if err := check(c, depth+1, o); err != nil {
			return err
		}
	}
	return nil
}

// message says a decoding error in one line.
func message(err error, friendly func(string) string) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			if friendly != nil {
				e = friendly(e)
			}
			msgs = append(msgs, e)
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Line is the line of the field at path (keys of nested mappings) in the document, or of the deepest one found.
func Line(root *yaml.Node, keys ...string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range keys {
		found := false
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
		}
		if !found {
			return line
		}
	}
	return line
}
