package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSinksSection(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("sinks.yaml", []byte(`
sinks:
  postgres: {url_env: STRATA_PG_URL, views: [orders, accounts]}
  search: {urls: [http://127.0.0.1:9200, https://es2:9200], username: strata, password_file: `+pw+`, views: [orders]}
  cache: {url: redis://127.0.0.1:6379/0, ttl: 30m, views: [orders, accounts]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Sinks.Search.Password(); got != "s3cret" {
		t.Errorf("search password = %q", got)
	}
	if c.Sinks.Cache.TTL != 30*time.Minute || c.Sinks.Search.Timeout != 10*time.Second || c.Sinks.Cache.Timeout != 2*time.Second {
		t.Errorf("durations: %+v", c.Sinks)
	}
	if p, a := c.Sinks.Cache.Prefix("orders"), c.Sinks.Cache.Prefix("accounts"); p != "order" || a != "accounts" {
		t.Errorf("prefixes: orders %q, accounts %q; want order (the seed's) and the view name", p, a)
	}
	if err := c.Sinks.CheckViews([]string{"orders"}); err == nil || !strings.Contains(err.Error(), `unknown view "accounts"`) {
		t.Errorf("CheckViews = %v", err)
	}
	if _, err := c.Sinks.Postgres.ConnURL(); err == nil || !strings.Contains(err.Error(), "STRATA_PG_URL is not set") {
		t.Errorf("ConnURL without the variable = %v", err)
	}
}

func TestSinksProblems(t *testing.T) {
	c := Defaults()
	c.Sinks = Sinks{
		Postgres: Postgres{URL: "postgres://x", URLEnv: "Y", Views: []string{"orders"}},
		Search:   Search{URLs: []string{"ftp://x", "http://u:hunter2@h:9200"}, Username: "u", Views: []string{"orders", "orders"}},
		Cache:    Cache{URL: "redis://:hunter2@", TTL: time.Millisecond, Views: []string{"orders"}, Prefixes: map[string]string{"orders": "a b"}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no problem found")
	}
	for _, want := range []string{
		"sinks.postgres: set exactly one of url, url_file, url_env",
		`sinks.search.urls: "ftp://x"`, "holds credentials", "username needs exactly one of password_file, password_env",
		`sinks.search.views: "orders" twice`, "sinks.cache.url", "sinks.cache.ttl", "sinks.cache.prefixes.orders",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a password in the problems:\n%v", err)
	}
}
