package server_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/server/state"
)

// The document the server serves is valid OpenAPI 3.1 (checked against the specification's own schema), names
// every route, and the server's answers and requests match it.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnvWith(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	st, raw := e.do(state.ScopeRead, "GET", "/openapi.json", nil)
	if st != 200 {
		t.Fatalf("GET /openapi.json = %d", st)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("NewValidator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, ve := range verrs {
			t.Errorf("the document is not valid OpenAPI: %s: %s", ve.Message, ve.Reason)
			for _, se := range ve.SchemaValidationErrors {
				t.Errorf("  %s at %s", se.Reason, se.FieldPath)
			}
		}
	}
	// The check can fail: the same document without its info object is refused.
	broken := strings.Replace(string(raw), `"info":`, `"infox":`, 1)
	if bdoc, err := libopenapi.NewDocument([]byte(broken)); err == nil {
		if bv, errs := validator.NewValidator(bdoc); len(errs) == 0 {
			if ok, _ := bv.ValidateDocument(); ok {
				t.Error("a document without info passed the validation")
			}
		}
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	if got := model.Model.Info.Version; got != containerization.Version() {
		t.Errorf("info.version = %q", got)
	}
	for _, p := range []string{"/v1/health", "/v1/containers", "/v1/containers/{name}", "/v1/containers/{name}/start", "/v1/containers/{name}/metrics",
		"/v1/scans", "/v1/registry", "/v1/jobs/{id}/events", "/v1/audit"} {
		if _, ok := model.Model.Paths.PathItems.Get(p); !ok {
			t.Errorf("the document lacks %s", p)
		}
	}
	// A request and its answer checked against it: the health check, and an error answer.
	for _, c := range []struct{ method, path string }{{"GET", "/v1/health"}, {"GET", "/v1/jobs/nosuch"}} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ok, verrs := v.ValidateHttpRequestResponse(req, resp); !ok {
			for _, ve := range verrs {
				t.Errorf("%s %s: %s: %s", c.method, c.path, ve.Message, strings.TrimSpace(ve.Reason))
			}
		}
		resp.Body.Close()
	}
}
