package match

import (
	"slices"
	"sort"
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/codomyrmex/containerization/scan/inventory"
)

// group merges the records that affect one package into one finding per vulnerability, as the package
// documentation describes.
func group(p inventory.Package, hits []hit) []Finding {
	if len(hits) == 0 {
		return nil
	}
	uf := unionFind{}
	bundle := make([]bool, len(hits))
	for i, h := range hits {
		id := h.rec.GetId()
		uf.find(id)
		for _, a := range h.rec.GetAliases() {
			uf.union(id, a)
		}
		if countCVEs(h.rec.GetUpstream()) > 1 {
			bundle[i] = true
			continue
		}
		for _, u := range h.rec.GetUpstream() {
			uf.union(id, u)
		}
	}
	groups := map[string][]hit{}
	var roots []string
	for i, h := range hits {
		if bundle[i] {
			continue
		}
		r := uf.find(h.rec.GetId())
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], h)
	}
	// A bundle joins the groups of the CVEs it names that matched on their own; alone, it is its own finding.
	folded := map[string][]string{}
	var alone []hit
	for i, h := range hits {
		if !bundle[i] {
			continue
		}
		joined := false
		for _, u := range h.rec.GetUpstream() {
			if r := uf.find(u); groups[r] != nil {
				if !slices.Contains(folded[r], h.rec.GetId()) {
					folded[r] = append(folded[r], h.rec.GetId())
				}
				joined = true
			}
		}
		if !joined {
			alone = append(alone, h)
		}
	}

	var out []Finding
	for _, r := range roots {
		out = append(out, finding(p, groups[r], folded[r], false))
	}
	for _, h := range alone {
		out = append(out, finding(p, []hit{h}, nil, true))
	}
	return out
}

// finding builds the finding of one group of records.
func finding(p inventory.Package, hs []hit, folded []string, isBundle bool) Finding {
	sort.SliceStable(hs, func(i, j int) bool { return preferred(hs[i], hs[j]) })
	primary := hs[0]
	ids := map[string]bool{}
	for _, h := range hs {
		ids[h.rec.GetId()] = true
		for _, a := range h.rec.GetAliases() {
			ids[a] = true
		}
		for _, u := range h.rec.GetUpstream() {
			ids[u] = true
		}
	}
	for _, f := range folded {
		ids[f] = true
	}
	delete(ids, primary.rec.GetId())
	aliases := sortedKeys(ids)

	f := Finding{
		ID:               primary.rec.GetId(),
		CVEID:            primary.rec.GetId(),
		Aliases:          aliases,
		Package:          p,
		InstalledVersion: p.Version,
		FixedVersion:     primary.fixed,
		URL:              advisoryURL(primary.rec),
	}
	if !isBundle && !strings.HasPrefix(f.ID, "CVE-") {
		for _, a := range aliases {
			if strings.HasPrefix(a, "CVE-") {
				f.CVEID = a
				break
			}
		}
	}
	// The primary record's rating, else the best another record of the group has: a CVSS one first.
	rt := severityOf(primary.rec, primary.entry)
	if rt.severity == SeverityUnknown {
		for _, wantCVSS := range []bool{true, false} {
			for _, h := range hs[1:] {
				if o := severityOf(h.rec, h.entry); o.severity != SeverityUnknown && (o.vector != "") == wantCVSS {
					rt = o
					break
				}
			}
			if rt.severity != SeverityUnknown {
				break
			}
		}
	}
	f.Severity, f.Score, f.Vector = rt.severity, rt.score, rt.vector
	for _, h := range hs {
		if f.Summary == "" {
			f.Summary = strings.TrimSpace(h.rec.GetSummary())
		}
		if f.Description == "" {
			f.Description = strings.TrimSpace(h.rec.GetDetails())
		}
	}
	return f
}

// preferred orders the records of a group: a fix for the installed version first, then an ecosystem's own
// record before a GHSA before a bare CVE record, then the smaller id.
func preferred(a, b hit) bool {
	if (a.fixed != "") != (b.fixed != "") {
		return a.fixed != ""
	}
	if ka, kb := idKind(a.rec.GetId()), idKind(b.rec.GetId()); ka != kb {
		return ka < kb
	}
	return a.rec.GetId() < b.rec.GetId()
}

func idKind(id string) int {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return 2
	case strings.HasPrefix(id, "GHSA-"):
		return 1
	}
	return 0
}

func countCVEs(ids []string) int {
	n := 0
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			n++
		}
	}
	return n
}

// advisoryURL is the record's ADVISORY reference, else the page its database names, else osv.dev's page.
func advisoryURL(v *osvschema.Vulnerability) string {
	for _, r := range v.GetReferences() {
		if r.GetType() == osvschema.Reference_ADVISORY && r.GetUrl() != "" {
			return r.GetUrl()
		}
	}
	if u := v.GetDatabaseSpecific().GetFields()["url"].GetStringValue(); strings.HasPrefix(u, "https://") {
		return u
	}
	return "https://osv.dev/vulnerability/" + v.GetId()
}

// unionFind joins ids that name the same vulnerability.
type unionFind map[string]string

func (u unionFind) find(x string) string {
	p, ok := u[x]
	if !ok {
		u[x] = x
		return x
	}
	if p == x {
		return x
	}
	r := u.find(p)
	u[x] = r
	return r
}

func (u unionFind) union(a, b string) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		u[rb] = ra
	}
}
