package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/codomyrmex/containerization/internal/yamlout"
)

// The formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// structured reports whether results go out as JSON or YAML rather than a table.
func (g *globalOptions) structured() bool { return g.output == outputJSON || g.output == outputYAML }

// encode writes v to stdout as JSON or YAML. YAML goes through JSON, so that both carry the JSON tags'
// field names (the specification's).
func (g *globalOptions) encode(v any) error {
	if g.output == outputYAML {
		b, err := yamlout.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding yaml: %w", err)
		}
		_, err = g.out.Write(b)
		return err
	}
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // ports read 0.0.0.0:8080->80/tcp, not \u003e
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated columns; the caller flushes it.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 3, ' ', 0) }
