package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Sinks are the stores outside Strata that keep copies of views (issue
// 10): Pebble stays every view's source of truth, and a projection writes
// each batch to a view's sinks before committing it to Pebble. Each sink
// names the views it copies; a view may have several. Credentials come
// from files or the environment and are never logged.
type Sinks struct {
	Postgres Postgres `yaml:"postgres"`
	Search   Search   `yaml:"search"`
	Cache    Cache    `yaml:"cache"`
}

// Postgres keeps views as PostgreSQL tables, rows and offsets in one
// transaction. TLS is the URL's (sslmode, sslrootcert).
type Postgres struct {
	// URL, URLFile or URLEnv (exactly one, when Views is set): the
	// postgres:// connection URL, which may hold a password, hence the
	// file and environment forms.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	URLEnv  string `yaml:"url_env"`
	// Schema the tables are created in. Default "public".
	Schema string `yaml:"schema"`
	// Views copied to tables. Default none.
	Views []string `yaml:"views,omitempty"`
}

// Search keeps views in an Elasticsearch 8 or OpenSearch 2 index
// <namespace>-<view> and serves their index queries from it.
type Search struct {
	// URLs of the cluster's nodes (http:// or https://), used round-robin;
	// a node that does not answer is skipped for the next.
	URLs []string `yaml:"urls,omitempty"`
	// Username with PasswordFile or PasswordEnv: HTTP basic auth.
	// Default none.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// CAFile verifies the nodes' certificates (https); default the
	// system pool.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds each request. Default 10s: a bulk of a large batch
	// fits; a node that hangs fails the batch, which is retried.
	Timeout time.Duration `yaml:"timeout"`
	// Views copied to the index. Default none.
	Views []string `yaml:"views,omitempty"`
}

// Cache keeps views' rows in Redis under <prefix>:<key>, refreshed by the
// projection and filled on read misses.
type Cache struct {
	// URL is redis:// or rediss:// (TLS) host:port/db, with the password
	// in it or in PasswordFile/PasswordEnv.
	URL          string `yaml:"url"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// CAFile verifies the server's certificate with rediss://.
	CAFile string `yaml:"ca_file"`
	// TTL of every entry. Default 1h (the seed's): an entry nobody reads
	// or writes is dropped after it, so the cache holds the hot rows.
	TTL time.Duration `yaml:"ttl"`
	// Timeout bounds each command. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Views cached. Default none.
	Views []string `yaml:"views,omitempty"`
	// Prefixes are the key prefixes per view; default the view's name,
	// but orders: order, the seed's order:<id>.
	Prefixes map[string]string `yaml:"prefixes"`
}

// setDefaults fills what the YAML left out.
func (s *Sinks) setDefaults() {
	// Empty lists as none, so that a config reads back as it was written.
	for _, l := range []*[]string{&s.Postgres.Views, &s.Search.Views, &s.Search.URLs, &s.Cache.Views} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if s.Search.Timeout == 0 {
		s.Search.Timeout = 10 * time.Second
	}
	if s.Cache.TTL == 0 {
		s.Cache.TTL = time.Hour
	}
	if s.Cache.Timeout == 0 {
		s.Cache.Timeout = 2 * time.Second
	}
}

// problems checks the sinks against the views the node has.
func (s *Sinks) problems() []error {
	s.setDefaults()
	var out []error
	bad := func(format string, args ...any) { out = append(out, fmt.Errorf(format, args...)) }
	if p := s.Postgres; len(p.Views) > 0 {
		if n := count(p.URL, p.URLFile, p.URLEnv); n != 1 {
			bad("sinks.postgres: set exactly one of url, url_file, url_env (%d set)", n)
		}
	}
	if q := s.Search; len(q.Views) > 0 {
		if len(q.URLs) == 0 {
			bad("sinks.search: urls is required (e.g. [http://127.0.0.1:9200])")
		}
		for _, u := range q.URLs {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				bad("sinks.search.urls: %q, want an http:// or https:// URL", u)
			} else if pu.User != nil {
				bad("sinks.search.urls: %q holds credentials: use username and password_file or password_env", redactURL(pu))
			}
		}
		if q.Username != "" && count(q.PasswordFile, q.PasswordEnv) != 1 {
			bad("sinks.search: username needs exactly one of password_file, password_env")
		}
		if q.Username == "" && count(q.PasswordFile, q.PasswordEnv) > 0 {
			bad("sinks.search: a password without a username")
		}
		if q.Timeout < 0 {
			bad("sinks.search.timeout: %s, want more than 0", q.Timeout)
		}
	}
	if c := s.Cache; len(c.Views) > 0 {
		if pu, err := url.Parse(c.URL); err != nil || (pu.Scheme != "redis" && pu.Scheme != "rediss") || pu.Host == "" {
			bad("sinks.cache.url: %q, want redis://host:port/db or rediss://", redact(c.URL))
		}
		if count(c.PasswordFile, c.PasswordEnv) > 1 {
			bad("sinks.cache: set at most one of password_file, password_env")
		}
		if c.TTL < time.Second {
			bad("sinks.cache.ttl: %s, want at least 1s (default 1h)", c.TTL)
		}
		if c.Timeout < 0 {
			bad("sinks.cache.timeout: %s, want more than 0", c.Timeout)
		}
		for v, p := range c.Prefixes {
			if p == "" || strings.ContainsAny(p, " \t\r\n") {
				bad("sinks.cache.prefixes.%s: %q, want a non-empty prefix without spaces", v, p)
			}
		}
	}
	for name, views := range map[string][]string{"postgres": s.Postgres.Views, "search": s.Search.Views, "cache": s.Cache.Views} {
		seen := map[string]bool{}
		for _, v := range views {
			if seen[v] {
				bad("sinks.%s.views: %q twice", name, v)
			}
			seen[v] = true
		}
	}
	return out
}

// CheckViews reports every sink view that is not one of the node's views.
func (s *Sinks) CheckViews(known []string) error {
	var out []error
	for name, views := range map[string][]string{"postgres": s.Postgres.Views, "search": s.Search.Views, "cache": s.Cache.Views} {
		for _, v := range views {
			if !slices.Contains(known, v) {
				out = append(out, fmt.Errorf("sinks.%s.views: unknown view %q (views: %s)", name, v, strings.Join(known, ", ")))
			}
		}
	}
	return joinSorted(out)
}

// Password reads the search sink's password ("" without a username).
func (q Search) Password() (string, error) {
	return secret("sinks.search", q.PasswordFile, q.PasswordEnv)
}

// Password reads the cache's password from its file or environment
// variable; "" when neither is set (the URL's, if any, applies).
func (c Cache) Password() (string, error) {
	return secret("sinks.cache", c.PasswordFile, c.PasswordEnv)
}

// Prefix is the key prefix of view's rows in the cache.
func (c Cache) Prefix(view string) string {
	if p := c.Prefixes[view]; p != "" {
		return p
	}
	return view
}

// ConnURL reads the PostgreSQL URL from where it is configured.
func (p Postgres) ConnURL() (string, error) {
	if p.URL != "" {
		return p.URL, nil
	}
	return secret("sinks.postgres (url)", p.URLFile, p.URLEnv)
}

func secret(what, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: reading the secret's file: %w", what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, env)
		}
		return v, nil
	}
	return "", nil
}

func count(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// redact hides a URL's password, for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

func redactURL(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		c := *u
		c.User = url.UserPassword(u.User.Username(), "xxxxx")
		return c.String()
	}
	return u.String()
}

func joinSorted(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}
