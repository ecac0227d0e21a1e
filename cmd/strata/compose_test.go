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
