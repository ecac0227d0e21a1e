// Package console is Strata's web console: plain HTML, CSS and JavaScript
// modules embedded in the binary and served by the node under /console/,
// with no build step and nothing fetched from elsewhere (it works offline).
// It holds no data: the pages read the /v1 JSON API from the browser, with
// the bearer token the user gives when the API asks for one, so the
// console's own files are served without authentication.
//
// # Usage
//
//	mux.Handle("/console/", console.Handler())
//	mux.Handle("GET /{$}", console.Redirect())
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where the console is served.
const Path = "/console/"

//go:embed assets
var assets embed.FS

// file is an asset with its ETag, computed once: embedded files have no
// modification time, so revalidation goes by content.
type file struct {
	body  []byte
	etag  string
	ctype string
}

// contentTypes of the assets, fixed here rather than read from the
// machine's mime.types: a browser refuses a module served as anything but
// JavaScript.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

// Handler serves the console's files under Path: index.html for Path
// itself, 404 for anything that is not an asset. Every answer carries a
// Content-Security-Policy that allows only the console's own scripts,
// styles and API calls, so that data shown by the pages (event payloads
// are outside input) can never run as code.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q files", p, path.Ext(p))
		}
		files[strings.TrimPrefix(p, "assets/")] = file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		// The assets are compiled in: failing to read them is a broken
		// build, not a runtime condition.
		panic("console: embedded assets: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read with GET", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Path)
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.Error(w, "no such console file: "+r.URL.Path+" (open "+Path+")", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", f.ctype)
		w.Header().Set("ETag", f.etag)
		// Revalidate every time: a new binary may bring new files, and
		// a 304 costs next to nothing.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// Redirect sends a browser that opens the server's root to the console.
func Redirect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusFound)
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
