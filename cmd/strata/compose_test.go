package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/config"
	"go.yaml.in/yaml/v3"
)

// TestComposeFileAgreesWithTheCode: compose/docker-compose.yml cannot run
// here (no Docker engine), so check what can go stale: service names,
// ports, Strata's brokers and flags against the brokers' listeners and the
// code's defaults.
func TestComposeFileAgreesWithTheCode(t *testing.T) {
	raw, err := os.ReadFile("../../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string
			Build       string
			Command     []string
			Ports       []string
			Environment map[string]string
			Healthcheck struct{ Test []string }
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		}
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var plaintext []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("kafka-%d", i)
		k, ok := f.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if !strings.HasPrefix(k.Image, "apache/kafka:4.") {
			t.Errorf("%s image %q, want the official apache/kafka 4.x", name, k.Image)
		}
		hostPort := fmt.Sprint(9091 + i)
		if len(k.Ports) != 1 || k.Ports[0] != hostPort+":"+hostPort {
			t.Errorf("%s ports %v, want %s:%s", name, k.Ports, hostPort, hostPort)
		}
		env := k.Environment
		if env["KAFKA_NODE_ID"] != fmt.Sprint(i) || !strings.Contains(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], fmt.Sprintf("%d@%s:", i, name)) {
			t.Errorf("%s: node id %q not in the quorum %q", name, env["KAFKA_NODE_ID"], env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
		}
		if env["KAFKA_DEFAULT_REPLICATION_FACTOR"] != "3" || env["KAFKA_MIN_INSYNC_REPLICAS"] != "2" || env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] != "2" {
			t.Errorf("%s: want replication 3 and min.insync.replicas 2 for the data and transaction logs", name)
		}
		if !strings.Contains(env["KAFKA_ADVERTISED_LISTENERS"], "HOST://localhost:"+hostPort) {
			t.Errorf("%s advertises %q, want HOST://localhost:%s for clients on the host", name, env["KAFKA_ADVERTISED_LISTENERS"], hostPort)
		}
		m := regexp.MustCompile(`PLAINTEXT://([^,]+)`).FindStringSubmatch(env["KAFKA_ADVERTISED_LISTENERS"])
		if m == nil {
			t.Fatalf("%s advertises no PLAINTEXT listener", name)
		}
		plaintext = append(plaintext, m[1])
		if len(k.Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	s, ok := f.Services["strata"]
	if !ok {
		t.Fatal("no service strata")
	}
	if got := s.Environment["STRATA_BROKERS"]; got != strings.Join(plaintext, ",") {
		t.Errorf("strata STRATA_BROKERS=%q, want the brokers' PLAINTEXT listeners %q", got, strings.Join(plaintext, ","))
	}
	_, port, _ := net.SplitHostPort(config.Defaults().HTTP)
	if len(s.Ports) != 1 || s.Ports[0] != port+":"+port {
		t.Errorf("strata ports %v, want %s:%s (the API's default port)", s.Ports, port, port)
	}
	if len(s.DependsOn) != 3 {
		t.Errorf("strata depends on %v, want the three brokers healthy", s.DependsOn)
	}
	// Every flag in the service's command exists, and the command parses.
	var stderr bytes.Buffer
	run(context.Background(), []string{s.Command[0], "--help"}, nil, &stderr, &stderr)
	for _, a := range s.Command[1:] {
		if strings.HasPrefix(a, "--") && !strings.Contains(stderr.String(), "-"+strings.TrimLeft(a, "-")+" ") {
			t.Errorf("strata command flag %s is not a flag of 'strata %s'", a, s.Command[0])
		}
	}
	if hc := s.Healthcheck.Test; len(hc) < 3 || hc[1] != "/strata" || hc[2] != "health" {
		t.Errorf("strata healthcheck %v, want /strata health", hc)
	}
	if _, err := os.Stat("../../" + strings.TrimPrefix(s.Build, "..") + "/Dockerfile"); s.Build != ".." || err != nil {
		t.Errorf("strata builds from %q: want the repository root's Dockerfile (%v)", s.Build, err)
	}
}

// TestComposeMonitoring: the compose file's Prometheus scrapes the strata
// service's API port, and Grafana mounts the provisioning and the
// dashboard that internal/metrics tests against the metrics.
func TestComposeMonitoring(t *testing.T) {
	raw, err := os.ReadFile("../../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Volumes []string
		}
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"prometheus", "grafana"} {
		s, ok := f.Services[svc]
		if !ok {
			t.Fatalf("no service %s", svc)
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
				if _, err := os.Stat("../../compose/" + src); err != nil {
					t.Errorf("%s mounts %s: %v", svc, src, err)
				}
			}
		}
	}
	raw, err = os.ReadFile("../../compose/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ScrapeConfigs []struct {
			MetricsPath   string                       `yaml:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(config.Defaults().HTTP)
	if len(p.ScrapeConfigs) != 1 || p.ScrapeConfigs[0].MetricsPath != "/metrics" || len(p.ScrapeConfigs[0].StaticConfigs) != 1 ||
		!slices.Equal(p.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"strata:" + port}) {
		t.Errorf("prometheus.yml scrapes %+v, want strata:%s/metrics", p.ScrapeConfigs, port)
	}
}

// TestComposeSinkServices: the stores the view sinks write to run as
// services the commented `sinks:` example on the strata service points at
// (service names, ports, the database and its password), publish their
// ports on the host's loopback only, and have health checks that the
// example's depends_on can wait for.
func TestComposeSinkServices(t *testing.T) {
	raw, err := os.ReadFile("../../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string
			Command     []string
			Ports       []string
			Environment map[string]string
			Healthcheck struct{ Test []string }
		}
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ name, image, port string }{
		{"redis", "redis:7", "6379"},
		{"postgres", "postgres:16", "5432"},
		{"opensearch", "opensearchproject/opensearch:2.", "9200"},
	} {
		s, ok := f.Services[want.name]
		if !ok {
			t.Errorf("no service %s", want.name)
			continue
		}
		if !strings.HasPrefix(s.Image, want.image) {
			t.Errorf("%s image %q, want %s*", want.name, s.Image, want.image)
		}
		if len(s.Ports) != 1 || s.Ports[0] != "127.0.0.1:"+want.port+":"+want.port {
			t.Errorf("%s ports %v, want 127.0.0.1:%s:%s (no login: loopback only)", want.name, s.Ports, want.port, want.port)
		}
		if len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s has no healthcheck", want.name)
		}
	}
	pg := f.Services["postgres"].Environment
	if !regexp.MustCompile(`^\$\{[A-Z_]+:-[^}]+\}$`).MatchString(pg["POSTGRES_PASSWORD"]) {
		t.Errorf("postgres password %q, want one from the environment with a default: ${VAR:-default}", pg["POSTGRES_PASSWORD"])
	}
	search := f.Services["opensearch"].Environment
	if search["discovery.type"] != "single-node" || search["DISABLE_SECURITY_PLUGIN"] != "true" || !strings.Contains(search["OPENSEARCH_JAVA_OPTS"], "-Xmx") {
		t.Errorf("opensearch environment %v, want a single node without the security plugin and a bounded heap", search)
	}

	// The commented example: the `sinks:` block (the comment lines from
	// "sinks:" on that are indented deeper than it) and the STRATA_PG_URL line.
	comment := func(line string) (body string, depth int, ok bool) {
		text, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		body = strings.TrimLeft(text, " ")
		return body, len(text) - len(body), ok
	}
	var block []string
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		if body, depth, ok := comment(line); ok && body == "sinks:" {
			block = append(block, body)
			for _, next := range lines[i+1:] {
				b, d, ok := comment(next)
				if !ok || d <= depth {
					break
				}
				block = append(block, strings.Repeat(" ", d-depth)+b)
			}
			break
		}
	}
	if len(block) < 2 {
		t.Fatalf("no commented sinks: example in the compose file")
	}
	var ex struct {
		Sinks struct {
			Postgres struct {
				URLEnv string   `yaml:"url_env"`
				Views  []string `yaml:"views"`
			} `yaml:"postgres"`
			Search struct {
				URLs  []string `yaml:"urls"`
				Views []string `yaml:"views"`
			} `yaml:"search"`
			Cache struct {
				URL   string   `yaml:"url"`
				TTL   string   `yaml:"ttl"`
				Views []string `yaml:"views"`
			} `yaml:"cache"`
		} `yaml:"sinks"`
	}
	dec := yaml.NewDecoder(strings.NewReader(strings.Join(block, "\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&ex); err != nil {
		t.Fatalf("the commented sinks: example does not parse: %v\n%s", err, strings.Join(block, "\n"))
	}
	if s := ex.Sinks.Search; len(s.URLs) != 1 || s.URLs[0] != "http://opensearch:9200" || len(s.Views) == 0 {
		t.Errorf("example search sink %+v, want the opensearch service at http://opensearch:9200 and some views", s)
	}
	if c := ex.Sinks.Cache; !strings.HasPrefix(c.URL, "redis://redis:6379/") || len(c.Views) == 0 {
		t.Errorf("example cache sink %+v, want the redis service at redis://redis:6379/", c)
	}
	p := ex.Sinks.Postgres
	m := regexp.MustCompile(`#\s+` + regexp.QuoteMeta(p.URLEnv) + `: (\S+)`).FindSubmatch(raw)
	if p.URLEnv == "" || m == nil || len(p.Views) == 0 {
		t.Fatalf("example postgres sink %+v: want url_env naming a variable the commented environment line sets", p)
	}
	want := fmt.Sprintf("postgres://%s:%s@postgres:5432/%s?", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
	if !strings.HasPrefix(string(m[1]), want) {
		t.Errorf("example %s=%s, want the postgres service's user, password and database: %s…", p.URLEnv, m[1], want)
	}
}
