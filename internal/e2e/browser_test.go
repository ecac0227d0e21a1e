package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The console's tests drive a real browser: Debian's chromium, headless.
// Without one they skip, saying so, except in CI (CI set), where the
// console must be tested.

// Viewport of the browser, and so of its screenshots.
const viewW, viewH = 1280, 800

// chromiumPath finds a Chromium: STRATA_CHROMIUM, else the usual names.
func chromiumPath() string {
	if p := os.Getenv("STRATA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium tab for one test, with the JavaScript
// errors its pages raised.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// errs are uncaught exceptions and console.error calls of the
	// pages: a console that works raises none.
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "no Chromium found (chromium, chromium-browser, google-chrome or STRATA_CHROMIUM): install Debian's chromium package (apt-get install chromium) to test the console"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so the console tests must run")
		}
		t.Skip(msg)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(viewW, viewH),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			msg = "console.error:"
			for _, a := range ev.Args {
				msg += " " + string(a.Value) + a.Description
			}
		default:
			return
		}
		b.mu.Lock()
		b.errs = append(b.errs, msg)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	// The window's size leaves the browser's own bars out of the page:
	// set the page's, which screenshots have.
	b.do(t, chromedp.EmulateViewport(viewW, viewH))
	return b
}

// noErrors fails the test if a page raised a JavaScript error.
func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("the console's JavaScript failed: %s", e)
	}
}

// stepTimeout bounds one browser step: an element that never comes
// must fail the test, not hang it.
const stepTimeout = 20 * time.Second

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval returns the value of a JavaScript expression on the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript expression until it is true, and fails the test
// with what the page shows when it is not within 15 seconds.
func (b *browser) wait(t *testing.T, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
			t.Fatalf("%s: not within 15s (%s; last error %v); the page shows:\n%s", what, expr, err, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keys types text into whatever has the focus, as a person would.
func (b *browser) keys(t *testing.T, s string) {
	t.Helper()
	b.do(t, chromedp.KeyEvent(s))
}

// screenshot captures the viewport and checks it is a PNG of the
// viewport's size.
func (b *browser) screenshot(t *testing.T) []byte {
	t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if cfg.Width != viewW || cfg.Height != viewH {
		t.Fatalf("screenshot is %dx%d, want the %dx%d viewport", cfg.Width, cfg.Height, viewW, viewH)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot does not decode: %v", err)
	}
	// A blank page (nothing rendered) is one colour.
	colours := map[uint32]bool{}
	for y := 0; y < viewH && len(colours) < 16; y += 7 {
		for x := 0; x < viewW; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 16 {
		t.Fatalf("screenshot has %d colours: the page did not render", len(colours))
	}
	return shot
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return fmt.Sprintf("%q", s)
}

// textOf is the JavaScript for the trimmed text of the first element
// matching a selector ("" when there is none).
func textOf(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").trim()`, jsString(sel))
}

func hasText(sel, want string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, jsString(sel), jsString(want))
}
