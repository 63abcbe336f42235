package vulndb

import (
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
)

// ParseRecord reads one OSV record in its JSON form. Fields and enum values this build of the schema does not
// know are ignored, as the OSV schema asks of readers.
func ParseRecord(data []byte) (*osvschema.Vulnerability, error) {
	v := new(osvschema.Vulnerability)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Withdrawn reports whether a record has been withdrawn by its publisher. Debian's converter writes the zero
// instant (0001-01-01T00:00:00Z) where it means "not withdrawn", so that instant does not count.
func Withdrawn(v *osvschema.Vulnerability) bool {
	w := v.GetWithdrawn()
	return w != nil && w.AsTime().After(time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC))
}

// NormalizeName is the form a package name is filed and looked up under: PyPI names are compared as PEP 503
// normalizes them (lowercase, runs of "-", "_" and "." as one "-"); other ecosystems' names are exact.
func NormalizeName(ecosystem, name string) string {
	if Family(ecosystem) != "PyPI" {
		return name
	}
	var b strings.Builder
	inRun := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			if !inRun {
				b.WriteByte('-')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteRune(r)
	}
	return b.String()
}

// Family is an ecosystem without its release: "Debian" for "Debian:12", "npm" for "npm".
func Family(ecosystem string) string {
	f, _, _ := strings.Cut(ecosystem, ":")
	return f
}
