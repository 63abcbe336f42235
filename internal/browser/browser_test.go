package browser_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization/internal/browser"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// TestPrintPDF prints a document with Debian's Chromium and reads its text back with pdftotext.
func TestPrintPDF(t *testing.T) {
	testenv.Browser(t)
	doc := `<!doctype html><html><head><meta charset="utf-8"><title>t</title>` +
		`<style>h1{color:#a00}</style></head><body><h1>Myrmex report</h1><p>sev&eacute;rit&eacute; &lt;b&gt;</p></body></html>`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pdf, err := browser.PrintPDF(ctx, []byte(doc), browser.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
	}
	text := testenv.PDFText(t, pdf)
	for _, want := range []string{"Myrmex report", "sevérité <b>"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q:\n%s", want, text)
		}
	}
}

// TestOffline: an offline browser (the one that prints) loads nothing over the network; the same page in a
// browser that is not offline reaches the server.
func TestOffline(t *testing.T) {
	testenv.Browser(t)
	for _, offline := range []bool{false, true} {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Write([]byte("<p>hello</p>"))
		}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tab, stop, err := browser.Start(ctx, browser.Options{Offline: offline})
		if err != nil {
			t.Fatal(err)
		}
		err = chromedp.Do(tab, chromedp.Navigate(srv.URL+"/page"))
		stop()
		cancel()
		srv.Close()
		switch {
		case offline && (err == nil || hits.Load() != 0):
			t.Errorf("offline: the navigation answered %v and the server saw %d requests; want it blocked", err, hits.Load())
		case !offline && (err != nil || hits.Load() == 0):
			t.Errorf("online: the navigation answered %v and the server saw %d requests; want the page", err, hits.Load())
		}
	}
}

// TestFindHonoursEnv: MYRMEX_CHROMIUM names the browser, and a wrong one is an error, not a fallback.
func TestFindHonoursEnv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "chromium")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYRMEX_CHROMIUM", fake)
	if got, err := browser.Find(); err != nil || got != fake {
		t.Fatalf("Find = %q, %v; want %q", got, err, fake)
	}
	t.Setenv("MYRMEX_CHROMIUM", filepath.Join(dir, "missing"))
	if got, err := browser.Find(); err == nil {
		t.Fatalf("Find = %q with a missing MYRMEX_CHROMIUM; want an error", got)
	}
}
