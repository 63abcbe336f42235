package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/codomyrmex/containerization/scan/cyclonedx"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// publishedSchema compiles a schema kept in testdata/schemas (see its README), with the schemas it references
// loaded from there too: nothing is fetched.
func publishedSchema(t *testing.T, main string, ids map[string]string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	for id, file := range ids {
		f, err := os.Open(filepath.Join("testdata", "schemas", file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	s, err := c.Compile(main)
	if err != nil {
		t.Fatalf("compiling %s: %v", main, err)
	}
	return s
}

// validate checks v, as the CLI writes it, against s.
func validate(t *testing.T, s *jsonschema.Schema, what string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("%s does not match its published schema: %v\n%s", what, err, b)
	}
}

// The SARIF and CycloneDX documents are checked against the formats' own published schemas, not only against
// Myrmex's structs: what GitHub code scanning and Dependency-Track read.
func TestOutputsMatchPublishedSchemas(t *testing.T) {
	t.Parallel()
	const sarifID = "https://json.schemastore.org/sarif-2.1.0-rtm.5.json"
	sarif := publishedSchema(t, sarifID, map[string]string{sarifID: "sarif-2.1.0-rtm.5.json"})
	cdx := publishedSchema(t, "http://cyclonedx.org/schema/bom-1.5.schema.json", map[string]string{
		"http://cyclonedx.org/schema/bom-1.5.schema.json":  "bom-1.5.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schema.json",
	})
	validate(t, sarif, "SARIF of a result with findings", sarifOf(formatResult()))
	validate(t, cdx, "CycloneDX of a result with findings", cycloneDXOf(formatResult()))
	empty := formatResult()
	empty.Vulnerabilities, empty.Compliance = nil, nil
	validate(t, sarif, "SARIF of a clean result", sarifOf(empty))
	validate(t, cdx, "CycloneDX of a clean result", cycloneDXOf(empty))
	sbom := cyclonedx.SBOM("example.com/app:1", time.Now(), "myrmex", "(devel)", []inventory.Package{
		{Name: "libc6", Version: "2.36-9+deb12u1", SourceName: "glibc", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12",
			Locations: []string{"/var/lib/dpkg/status"}, Layer: inventory.Layer{DiffID: "sha256:aa"}},
		{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.20", Locations: []string{"/app/node_modules/lodash/package.json"}},
		{Name: "no-purl", Version: "1", Ecosystem: "PyPI"},
	})
	if len(sbom.Components) != 3 {
		t.Errorf("SBOM components = %+v", sbom.Components)
	}
	validate(t, cdx, "the SBOM of an image", sbom)

	// The check can fail: a document that breaks the schema is refused.
	broken := sarifOf(formatResult())
	broken.Version = "2.0"
	b, _ := json.Marshal(broken)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := sarif.Validate(inst); err == nil {
		t.Error("a SARIF log of version 2.0 passed the 2.1.0 schema")
	}
}
