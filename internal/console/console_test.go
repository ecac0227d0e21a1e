package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/console/", "text/html; charset=utf-8", "<title>Strata console</title>"},
		{"/console/index.html", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/console/app.js", "text/javascript; charset=utf-8", "import"},
		{"/console/pages/timeline.js", "text/javascript; charset=utf-8", "export async function renderTimeline"},
		{"/console/style.css", "text/css; charset=utf-8", ":focus-visible"},
	} {
		rec := serve(t, h, "GET", tc.path, nil)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tc.ctype || !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("GET %s: %d %q, want 200 %q holding %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.ctype, tc.contains)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %q", tc.path, rec.Header())
		}
		// Revalidation by content: the same file answers 304.
		etag := rec.Header().Get("ETag")
		if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Fatalf("GET %s: ETag %q, Cache-Control %q", tc.path, etag, rec.Header().Get("Cache-Control"))
		}
		if rec := serve(t, h, "GET", tc.path, http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", tc.path, rec.Code)
		}
	}
	if rec := serve(t, h, "GET", "/console/nothing.js", nil); rec.Code != 404 || !strings.Contains(rec.Body.String(), "open /console/") {
		t.Errorf("a missing file: %d %q", rec.Code, rec.Body)
	}
	if rec := serve(t, h, "POST", "/console/", nil); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %q", rec.Code, rec.Header())
	}
	if rec := serve(t, Redirect(), "GET", "/", nil); rec.Code != http.StatusFound || rec.Header().Get("Location") != Path {
		t.Errorf("redirect: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestAssets checks, without a browser, what would break the console or
// its promises: every module a script imports and every file the page
// names is embedded; nothing is fetched from another origin (it must work
// offline); and no script writes markup, so data is only ever text.
func TestAssets(t *testing.T) {
	files := map[string]string{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		files[strings.TrimPrefix(p, "assets/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	imports := regexp.MustCompile(`(?m)^import .* from '([^']+)';$`)
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	external := regexp.MustCompile(`https?://`)
	markup := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function`)
	checked := 0
	for name, body := range files {
		var targets []string
		switch path.Ext(name) {
		case ".js":
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				targets = append(targets, m[1])
			}
			if m := markup.FindString(body); m != "" {
				t.Errorf("%s uses %s: render data with textContent and elements (dom.js h)", name, m)
			}
		case ".html":
			for _, m := range refs.FindAllStringSubmatch(body, -1) {
				targets = append(targets, m[1])
			}
		}
		for _, target := range targets {
			resolved := path.Join(path.Dir(name), target)
			if _, ok := files[resolved]; !ok {
				t.Errorf("%s names %s (%s), which is not embedded", name, target, resolved)
			}
			checked++
		}
		// The SVG namespace is a name, not a fetch.
		if m := external.FindString(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", "")); m != "" {
			t.Errorf("%s refers to another origin (%s): the console must work offline", name, m)
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d references: are the patterns still matching the assets?", checked)
	}
}
