// Package yamlout writes values as YAML through their JSON form, as sigs.k8s.io/yaml does (the JSON tags name
// the fields; keys come out sorted), with the characters that YAML may not hold raw escaped first: sigs.k8s.io/yaml
// reads the JSON text as YAML, which refuses DEL, the C1 controls and U+FFFE/U+FFFF ("control characters are not
// allowed") and takes NEL, U+2028 and U+2029 for line breaks (the string changes). Escaped in the JSON text, they
// come out of the YAML as the same escapes, and read back as the same strings.
package yamlout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// Marshal returns v as YAML.
func Marshal(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out, err := yaml.JSONToYAML(escape(j))
	if err == nil {
		return out, nil
	}
	// sigs.k8s.io/yaml reads the JSON text as YAML, where every key is an implicit key, and YAML bounds those at 1024
	// characters: a longer one (a label's key, a path) cannot be read that way. The document is then built from the
	// decoded JSON, and the YAML encoder writes such a key as an explicit one ("? key").
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var doc any
	if derr := dec.Decode(&doc); derr != nil {
		return nil, err
	}
	return yamlv2.Marshal(plain(doc))
}

// plain turns decoded JSON into what the YAML encoder writes as the same JSON reads: objects as mappings with
// their keys in order, numbers as integers where they are whole and fit, else as floats.
func plain(v any) any {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := make(yamlv2.MapSlice, 0, len(v))
		for _, k := range keys {
			m = append(m, yamlv2.MapItem{Key: k, Value: plain(v[k])})
		}
		return m
	case []any:
		for i := range v {
			v[i] = plain(v[i])
		}
		return v
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

// unsafe reports whether YAML cannot carry r raw inside a double-quoted scalar.
func unsafe(r rune) bool {
	switch {
	case r == 0x7f, r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}

// escape writes the runes unsafe finds in a JSON text as \u escapes. They can only stand inside its strings:
// JSON's syntax outside strings is ASCII.
func escape(j []byte) []byte {
	if !bytes.ContainsFunc(j, unsafe) {
		return j
	}
	out := make([]byte, 0, len(j)+16)
	for len(j) > 0 {
		r, n := utf8.DecodeRune(j)
		if unsafe(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, j[:n]...)
		}
		j = j[n:]
	}
	return out
}
