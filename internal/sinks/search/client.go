// Package search keeps views in an index speaking the Elasticsearch REST
// API, and serves their index queries and row reads from it. It uses only
// what Elasticsearch 8 and OpenSearch 2 both answer the same way (index
// creation with mappings, _bulk with external versioning, GET _doc,
// _search with search_after, _refresh), over net/http: the official
// clients are each tied to one of the two.
//
// Every view is the index <namespace>-<view>; the offsets a sink has
// written are documents of <namespace>-strata-offsets, one per view.
package search

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Config configures a Client.
type Config struct {
	// URLs of the cluster's nodes, tried round-robin; a node that cannot
	// be reached is skipped for the next one.
	URLs []string
	// Username and Password: HTTP basic auth when Username is set.
	Username, Password string
	// CAFile verifies https nodes' certificates; default the system pool.
	CAFile string
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration
}

// Client sends requests to the cluster. It is safe for concurrent use.
type Client struct {
	urls       []*url.URL
	next       atomic.Uint32
	http       *http.Client
	user, pass string
}

// NewClient checks cfg and returns its client. It connects to nothing.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("search: no URL: set sinks.search.urls (e.g. [http://127.0.0.1:9200])")
	}
	c := &Client{user: cfg.Username, pass: cfg.Password}
	for _, s := range cfg.URLs {
		u, err := url.Parse(strings.TrimRight(s, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("search: URL %q: want http://host:port or https://host:port", s)
		}
		c.urls = append(c.urls, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("search: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("search: ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	c.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	return c, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ErrUnavailable wraps the error of a request no node answered.
var ErrUnavailable = errors.New("search: no node answered")

// do sends a request to the next node, and to the others in turn while
// they cannot be reached or answer 502, 503 or 504 (a node restarting or
// behind a proxy). Every request Strata sends is idempotent (documents
// carry external versions), so sending it again elsewhere is safe. It
// returns the status and body of the answer, whatever its status.
func (c *Client) do(ctx context.Context, method, path string, body []byte, ndjson bool) (int, []byte, error) {
	start := int(c.next.Add(1))
	var lastErr error
	for i := range c.urls {
		u := c.urls[(start+i)%len(c.urls)]
		req, err := http.NewRequestWithContext(ctx, method, u.String()+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, fmt.Errorf("search: %s %s: %w", method, path, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
			if ndjson {
				req.Header.Set("Content-Type", "application/x-ndjson")
			}
		}
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, fmt.Errorf("search: %s %s on %s: %w", method, path, u.Host, ctx.Err())
			}
			lastErr = fmt.Errorf("%s: %w", u.Host, err)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			lastErr = fmt.Errorf("%s: reading the answer: %w", u.Host, err)
			continue
		}
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			lastErr = fmt.Errorf("%s: %s", u.Host, apiError(resp.StatusCode, data))
			continue
		case http.StatusUnauthorized, http.StatusForbidden:
			return resp.StatusCode, data, fmt.Errorf("search: %s %s on %s: %s: check sinks.search.username and its password", method, path, u.Host, apiError(resp.StatusCode, data))
		}
		return resp.StatusCode, data, nil
	}
	return 0, nil, fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, path, lastErr)
}

// apiError describes an error answer: its status and, when it has the
// usual {"error":{"type","reason"}} body, those.
func apiError(status int, body []byte) string {
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		return fmt.Sprintf("%d %s: %s", status, e.Error.Type, e.Error.Reason)
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%d %s", status, s)
}

// errorType is the error type of an error answer, "" if none.
func errorType(body []byte) string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Type
}
