package server

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/policy"
)

var (
	openapiOnce sync.Once
	openapiDoc  map[string]any
)

// OpenAPI is the API's OpenAPI 3.1 document, made from the route table and the Go types its handlers decode and
// encode (their JSON Schemas reflected from the types and their json tags): it cannot drift from them.
func (s *Server) OpenAPI() map[string]any {
	openapiOnce.Do(func() { openapiDoc = buildOpenAPI(s.routes) })
	return openapiDoc
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

func buildOpenAPI(routes []route) map[string]any {
	schemas := map[string]any{}
	r := &jsonschema.Reflector{
		AllowAdditionalProperties:  true, // answers may grow fields; requests are checked by the server itself
		RequiredFromJSONSchemaTags: true, // nothing is marked required from omitempty alone
		Namer: func(t reflect.Type) string {
			return schemaName(t)
		},
		Mapper: mappedTypes,
	}
	ref := func(v any) map[string]any {
		sc := r.Reflect(v)
		b, _ := json.Marshal(sc)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		defs, _ := m["$defs"].(map[string]any)
		for name, d := range defs {
			schemas[name] = rewriteRefs(d)
		}
		delete(m, "$defs")
		delete(m, "$schema")
		delete(m, "$id")
		return rewriteRefs(m).(map[string]any)
	}
	errSchema := ref(&ErrorBody{})
	paths := map[string]any{}
	for _, rt := range routes {
		op := map[string]any{"operationId": rt.id, "summary": rt.summary}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.doc, "schema": map[string]any{"type": q.typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.in != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(rt.in)}}}
		}
		ok := map[string]any{"description": rt.summary}
		if rt.stream {
			ok["content"] = map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string",
				"description": "progress events (data: an Event as JSON), then an end event (data: the Job)"}}}
		} else if rt.text {
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string",
				"description": "the Prometheus text exposition format (version 0.0.4)"}}}
		} else if rt.document {
			ok["content"] = map[string]any{
				"text/html":        map[string]any{"schema": map[string]any{"type": "string", "description": "format=html: one self-contained document"}},
				"application/pdf":  map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": "application/pdf", "description": "format=pdf"}},
				"application/json": map[string]any{"schema": ref(rt.out)},
			}
		} else if rt.out != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(rt.out)}}
		}
		responses := map[string]any{itoa(rt.status): ok,
			"default": map[string]any{"description": "an error: the JSON error object, with the status of its kind",
				"content": map[string]any{"application/json": map[string]any{"schema": errSchema}}}}
		if rt.scope != "" {
			op["security"] = []any{map[string]any{"token": []any{}}}
			op["description"] = "Needs a token with scope " + string(rt.scope) + " or above."
		} else {
			op["security"] = []any{}
		}
		op["responses"] = responses
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Myrmex API", "version": containerization.Version(),
			"description": "The containerization module of Codomyrmex over HTTP: the specification's six functions, jobs, audit."},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"token": map[string]any{"type": "http", "scheme": "bearer", "description": "a token made with `myrmex serve token create`"}},
		},
		"security": []any{map[string]any{"token": []any{}}},
	}
}

// mappedTypes are the schemas of the types that marshal themselves otherwise than their Go type reads, which
// reflection cannot see.
func mappedTypes(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[runtime.RawExtension](): // its JSON is the object it holds, or null: any value
		anything := *jsonschema.TrueSchema
		return &anything
	case reflect.TypeFor[policy.Date]():
		return &jsonschema.Schema{Type: "string", Format: "date"}
	case reflect.TypeFor[policy.Duration]():
		return &jsonschema.Schema{Type: "string", Description: "a duration: 90m, 24h, 7d"}
	}
	return nil
}

// schemaName names a Go type's schema: its package's last element and its name, so that two types of one name
// in two packages stay apart.
func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	if pkg == "" || pkg == "containerization" {
		return t.Name()
	}
	return pkg + "." + t.Name()
}

// rewriteRefs points the reflected schemas' references ("#/$defs/X") at the document's components.
func rewriteRefs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "$ref" {
				if s, ok := e.(string); ok {
					x[k] = strings.Replace(s, "#/$defs/", "#/components/schemas/", 1)
				}
				continue
			}
			x[k] = rewriteRefs(e)
		}
		return x
	case []any:
		for i := range x {
			x[i] = rewriteRefs(x[i])
		}
	}
	return v
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
