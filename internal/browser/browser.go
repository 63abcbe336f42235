// Package browser starts a headless Chromium (Debian's chromium or chromium-headless-shell, never one downloaded
// by a tool) and drives it over the DevTools protocol with chromedp: the security report's PDF is printed by it,
// and the dashboard's tests use it as a user would.
package browser

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization/errdefs"
)

// Candidates are where [Find] looks for a browser, after $MYRMEX_CHROMIUM: Debian's packages, then the PATH.
var Candidates = []string{"/usr/bin/chromium-headless-shell", "/usr/bin/chromium", "chromium-headless-shell", "chromium", "google-chrome"}

// Find returns the browser to run: $MYRMEX_CHROMIUM when set (it must run), else the first of [Candidates] found.
// Without one the error is ErrUnavailable and says which package to install.
func Find() (string, error) {
	if p := os.Getenv("MYRMEX_CHROMIUM"); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w: MYRMEX_CHROMIUM=%s: %v", errdefs.ErrUnavailable, p, err)
		}
		return found, nil
	}
	for _, c := range Candidates {
		if found, err := exec.LookPath(c); err == nil {
			return found, nil
		}
	}
	return "", fmt.Errorf("%w: no headless browser: install Debian's chromium (apt-get install chromium) or set MYRMEX_CHROMIUM", errdefs.ErrUnavailable)
}

// Options configures [Start].
type Options struct {
	// Path is the browser's binary (default: [Find]).
	Path string
	// Width and Height are the window's size in CSS pixels (default 1280×800).
	Width, Height int
	// Offline keeps the pages off the network, loopback included: every request goes to a proxy of its own that
	// answers nothing. What is printed must be self-contained (styles inline, images as data: URLs).
	Offline bool
}

// Start starts a browser with a user data directory of its own and returns the chromedp context of its first
// tab, and stop, which closes the browser and removes the directory. The browser is headless, keeps off the
// network but for the pages it is sent to (no background requests, updates, sync or QUIC) and, run as root,
// without its sandbox (Chromium refuses to start as root otherwise).
func Start(ctx context.Context, opts Options) (context.Context, func(), error) {
	path := opts.Path
	if path == "" {
		var err error
		if path, err = Find(); err != nil {
			return nil, nil, err
		}
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 1280, 800
	}
	dir, err := os.MkdirTemp("", "myrmex-chromium-")
	if err != nil {
		return nil, nil, err
	}
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(opts.Width, opts.Height),
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
	)
	if os.Geteuid() == 0 {
		flags = append(flags, chromedp.NoSandbox)
	}
	var proxy net.Listener
	if opts.Offline {
		if proxy, err = deadEnd(); err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		// <-loopback> takes away the bypass Chromium keeps for loopback addresses.
		flags = append(flags, chromedp.ProxyServer("http://"+proxy.Addr().String()), chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, flags...)
	bctx, bcancel := chromedp.NewContext(actx)
	stop := func() {
		bcancel() // closes the browser and waits for it to exit; then its directory can go
		acancel()
		os.RemoveAll(dir)
		if proxy != nil {
			proxy.Close()
		}
	}
	// The first Do starts the browser: a browser that cannot start fails here, not in the caller's first step.
	// Its life is bound to ctx, the context of that first call.
	if err := chromedp.Do(bctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("%w: starting %s: %v", errdefs.ErrUnavailable, path, err)
	}
	return bctx, stop, nil
}

// deadEnd is a proxy that answers nothing: it accepts each connection and closes it at once. An offline
// browser sends everything there, loopback included.
func deadEnd() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l, nil
}

// PDFOptions configures [PrintPDF].
type PDFOptions struct {
	// Landscape prints across the page; the default is portrait, A4.
	Landscape bool
	// Timeout bounds the load and the print (default 60 s).
	Timeout time.Duration
}

// PrintPDF prints an HTML document to PDF in a browser of its own, started and stopped for it, with the network
// blocked: the document must hold everything it shows (styles inline, images as data: URLs). A4 with 12 mm
// margins, backgrounds printed, the document's own @page rules first.
func PrintPDF(ctx context.Context, html []byte, opts PDFOptions) ([]byte, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	bctx, stop, err := Start(ctx, Options{Offline: true})
	if err != nil {
		return nil, err
	}
	defer stop()
	err = chromedp.Do(bctx,
		chromedp.Navigate("about:blank"),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			tree, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
			if err != nil {
				return err
			}
			_, err = cdp.Call(ctx, t, page.SetDocumentContent, page.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: string(html)})
			return err
		}),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	var pdf []byte
	if err == nil {
		pdf, err = chromedp.Run(bctx, chromedp.PrintToPDF(
			chromedp.PDFPaper(chromedp.PaperA4),
			func(p *page.PrintToPDFParams) {
				if opts.Landscape {
					p.Landscape = new(true)
				}
				p.PreferCSSPageSize = new(true)
			},
			chromedp.PDFMargin(12/25.4),
			chromedp.PDFPrintBackground(),
		))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: printing the PDF took longer than %s", errdefs.ErrUnavailable, opts.Timeout)
		}
		return nil, fmt.Errorf("printing the PDF: %w", err)
	}
	return pdf, nil
}
