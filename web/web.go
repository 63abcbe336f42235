// Package web is the dashboard that `myrmex serve` serves at /ui/: plain HTML, CSS and JavaScript modules,
// embedded in the binary (nothing fetched from elsewhere at run time, no build step), that sign in with an API
// token and then talk to the API under /v1 with the session's cookie. Every value a page shows is set as text,
// never as markup; the server's Content-Security-Policy lets the pages run only these scripts.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

//go:embed static
var static embed.FS

// asset is one embedded file, with its content type and entity tag.
type asset struct {
	body []byte
	typ  string
	etag string
}

var assets = func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		typ := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the machine's MIME table
		case ".js":
			typ = "text/javascript; charset=utf-8"
		case ".css":
			typ = "text/css; charset=utf-8"
		case ".html":
			typ = "text/html; charset=utf-8"
		case ".svg":
			typ = "image/svg+xml"
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = asset{body: b, typ: typ, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}()

// Mount serves the dashboard on r: / and /ui go to /ui/, which is the page; /ui/NAME are its files.
func Mount(r chi.Router) {
	r.Get("/", func(w http.ResponseWriter, req *http.Request) { http.Redirect(w, req, "/ui/", http.StatusFound) })
	r.Get("/ui", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "/ui/", http.StatusMovedPermanently)
	})
	r.Get("/ui/*", serve)
	r.Head("/ui/*", serve)
}

var started = time.Now()

func serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	a, ok := assets[name]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", a.typ)
	w.Header().Set("ETag", a.etag)
	// Revalidated on every load: a new binary's pages are seen at once, an unchanged one costs a 304.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", started, bytes.NewReader(a.body))
}
