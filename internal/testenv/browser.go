package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/browser"
)

// Browser returns the path of the headless browser the tests drive (Debian's chromium; MYRMEX_CHROMIUM, which
// scripts/browser.sh prints and `make test` exports). It skips or fails (see the package doc) without one.
func Browser(t testing.TB) string {
	t.Helper()
	path, err := browser.Find()
	if err != nil {
		if Required() {
			t.Fatalf("the tests need a headless browser: %v (make test installs it: scripts/browser.sh install)", err)
		}
		t.Skipf("no headless browser (run `make test`, or scripts/browser.sh install): %v", err)
	}
	return path
}

// BrowserTab starts a browser for the test (a user data directory of its own; w×h CSS pixels) and returns its
// tab's chromedp context, closed when the test ends.
func BrowserTab(t testing.TB, w, h int) context.Context {
	t.Helper()
	path := Browser(t)
	ctx, stop, err := browser.Start(context.Background(), browser.Options{Path: path, Width: w, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ctx
}

// Axe returns axe-core's script (MYRMEX_AXE, which scripts/browser.sh prints and `make test` exports), to run
// in a page under test. It skips or fails (see the package doc) without it.
func Axe(t testing.TB) string {
	t.Helper()
	path := os.Getenv("MYRMEX_AXE")
	if path == "" {
		if Required() {
			t.Fatal("the tests need axe-core: MYRMEX_AXE is not set (make test installs it: scripts/browser.sh install)")
		}
		t.Skip("no axe-core (scripts/browser.sh install; export what scripts/browser.sh env prints)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("MYRMEX_AXE: %v", err)
	}
	return string(b)
}

// PDFText is a PDF's text as pdftotext reads it (Debian's poppler-utils), its layout kept.
func PDFText(t testing.TB, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		if Required() {
			t.Fatal("the tests need pdftotext (poppler-utils; make test installs it: scripts/browser.sh install)")
		}
		t.Skip("no pdftotext (apt-get install poppler-utils)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pdftotext", "-layout", "-enc", "UTF-8", "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("pdftotext: %v: %s", err, errb.String())
	}
	return out.String()
}
