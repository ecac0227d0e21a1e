// Package config is the configuration of a Strata node: a YAML file, then
// flags over it. Every field documents its default; Validate reports every
// problem at once, each naming the setting and how to fix it.
package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/strata-es/strata/internal/yamlerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.yaml.in/yaml/v3"
)

// Config is everything `strata serve` (and `strata dev`) can be told.
type Config struct {
	// Brokers are Kafka's bootstrap addresses. Required for serve.
	Brokers []string `yaml:"brokers"`
	// Namespace prefixes every topic: lower-case letters, digits and '-',
	// starting with a letter. Default "strata".
	Namespace string `yaml:"namespace"`
	// Partitions of the commands and events topics Strata creates.
	// Default 12; must match existing topics.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of created topics. Default -1: the broker's
	// default.replication.factor. Use 3 on a production cluster.
	ReplicationFactor int `yaml:"replication_factor"`
	// SnapshotEvery: an aggregate's snapshot is written each time its
	// version reaches a multiple of this. Default 100 (1% more records;
	// time travel and restores replay at most 99 events per aggregate).
	SnapshotEvery int `yaml:"snapshot_every"`
	// DedupeWindow: how long a command ID is remembered. Default 24h.
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	// ReadWait: how long a read given a position token waits for it by
	// default; ReadWaitMax the most a request's ?wait= may ask. Defaults
	// 5s and 30s: long enough for a busy view, short enough that a stuck
	// one answers 503 rather than hanging a client.
	ReadWait    time.Duration `yaml:"read_wait"`
	ReadWaitMax time.Duration `yaml:"read_wait_max"`
	// Data is the data directory (state store). Default "strata-data".
	Data string `yaml:"data"`
	// InstanceID names this process in the processors' consumer groups
	// and transactional IDs. Default: an ID kept in the data directory.
	// Give a stable one (a StatefulSet's pod name) so that a process
	// replacing a dead one on an empty disk takes over at once; it must be
	// unique among the running processes.
	InstanceID string `yaml:"instance_id"`
	// HTTP is the API's listen address. Default 127.0.0.1:8080: only
	// this machine can reach it unless you say otherwise.
	HTTP string `yaml:"http"`
	// AuthTokenFile holds the bearer tokens the HTTP API requires, one
	// per line: TOKEN (read-write), "read-write TOKEN" or "read-only
	// TOKEN"; # starts a comment. Read at start. Default none, and a
	// file with no tokens: no authentication, so anyone who can reach
	// the address can send commands.
	AuthTokenFile string `yaml:"auth_token_file"`
	Log           Log    `yaml:"log"`
	TLS           TLS    `yaml:"tls"`
	SASL          SASL   `yaml:"sasl"`
	// Metrics says who may read the Prometheus metrics at /metrics:
	// "token" (default: with tokens configured, a token is required as on
	// every other route; a read-only one suffices), "open" (no token, for
	// scrapers that cannot send one) or "off" (no /metrics).
	Metrics string `yaml:"metrics"`
	// ProjectionMaxLag is how many offsets a projection may be behind its
	// topics with /readyz still ready. Default 100000 (about a second of
	// catch-up); 0: no bound. A lower bound drops a busy node out of a
	// load balancer sooner; a higher one serves staler views.
	ProjectionMaxLag int64 `yaml:"projection_max_lag"`
	// MaxConnections bounds the HTTP connections open at once; more wait
	// to be accepted until one closes. Default 1024; 0: no bound.
	MaxConnections int `yaml:"max_connections"`
	// SchemaRegistry optionally registers the schemas in a
	// Confluent-compatible registry.
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	// Tracing exports OpenTelemetry spans. Default exporter none: no
	// spans, but a trace context arriving with a command still reaches
	// its events, result and published view rows.
	Tracing tracing.Config `yaml:"tracing"`
	// Sinks keep copies of views in PostgreSQL, a search index and a
	// Redis cache (sinks.go). Default none.
	Sinks Sinks `yaml:"sinks"`
}

// SchemaRegistry configures a Confluent-compatible schema registry.
type SchemaRegistry struct {
	// URL of the registry; empty: none.
	URL string `yaml:"url"`
	// WireFormat of the events Strata writes: "single-object" (default,
	// Avro's own, needs no registry to read) or "confluent" (0x00, the
	// registry's schema ID, the body: for consumers using Confluent's
	// deserializers). Strata reads both either way.
	WireFormat string `yaml:"wire_format"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
	// Kafka is the level of the Kafka client's own logs (franz-go's), in
	// the same log with component=kgo: off (default), error, warn, info
	// or debug. At info it tells each step of every transaction and group
	// session, several lines per transaction: for investigations.
	Kafka string `yaml:"kafka"`
}

// TLS configures encrypted connections to Kafka.
type TLS struct {
	// Enabled turns TLS on; it is on when any file below is set.
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the brokers' certificates; default: the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the brokers' certificates.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables verification. Never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL configures Kafka authentication.
type SASL struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// The password: inline, from a file (trailing newline trimmed), or
	// from an environment variable. Prefer a file or the environment.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// Defaults returns the configuration with every default set.
func Defaults() Config {
	return Config{
		Namespace:         "strata",
		Partitions:        12,
		ReplicationFactor: -1,
		SnapshotEvery:     100,
		DedupeWindow:      24 * time.Hour,
		ReadWait:          5 * time.Second,
		ReadWaitMax:       30 * time.Second,
		Data:              "strata-data",
		HTTP:              "127.0.0.1:8080",
		Metrics:           "token",
		ProjectionMaxLag:  100_000,
		MaxConnections:    1024,
		Log:               Log{Level: "info", Format: "text"},
		SchemaRegistry:    SchemaRegistry{WireFormat: "single-object"},
		Tracing:           tracing.Config{Exporter: tracing.ExporterNone, SampleRatio: 1},
		Sinks: Sinks{
			Search: Search{Timeout: 10 * time.Second},
			Cache:  Cache{TTL: time.Hour, Timeout: 2 * time.Second, Prefixes: map[string]string{"orders": "order"}},
		},
	}
}

// Load reads a YAML file over the defaults (see Parse).
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Defaults(), fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads the YAML of the file named name over the defaults. Unknown
// keys are errors, so a typo is not silently ignored; errors name the file
// and line. An empty file is the defaults; a file of more than one YAML
// document is an error, since only the first would be read.
func Parse(name string, data []byte) (Config, error) {
	c := Defaults()
	what := "config " + name
	if err := yamlerr.CheckUTF8(what, data); err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// io.EOF: an empty file is the defaults.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, yamlerr.Wrap(what, data, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		if len(more.Content) > 0 && more.Content[0].Tag != "!!null" {
			return c, fmt.Errorf("%s, line %d: a second YAML document (after ---): put every setting in one", what, more.Content[0].Line)
		}
	} else if !errors.Is(err, io.EOF) {
		return c, yamlerr.Wrap(what, data, err)
	}
	return c, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil {
			bad("brokers (--brokers): %q is not host:port", b)
		} else if n, err := net.LookupPort("tcp", port); err != nil || n == 0 {
			bad("brokers (--brokers): %q: the port must be 1 to 65535", b)
		}
	}
	if err := aggregates.CheckName(c.Namespace); err != nil {
		bad("namespace (--namespace): %q %v (it prefixes every topic name)", c.Namespace, err)
	}
	if c.Partitions < 1 || c.Partitions > 10000 {
		bad("partitions (--partitions): %d, want 1 to 10000", c.Partitions)
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 || c.ReplicationFactor > 32767 {
		bad("replication_factor (--replication-factor): %d, want -1 (broker default) or 1 to 32767", c.ReplicationFactor)
	}
	if c.SnapshotEvery < 1 {
		bad("snapshot_every (--snapshot-every): %d, want 1 or more", c.SnapshotEvery)
	}
	if c.DedupeWindow < time.Second {
		bad("dedupe_window (--dedupe-window): %s, want at least 1s (e.g. 24h)", c.DedupeWindow)
	}
	if c.ReadWait <= 0 || c.ReadWaitMax < c.ReadWait {
		bad("read_wait (--read-wait) %s and read_wait_max (--read-wait-max) %s: want 0 < read_wait <= read_wait_max", c.ReadWait, c.ReadWaitMax)
	}
	if c.Data == "" {
		bad("data (--data): the data directory is required")
	}
	if _, port, err := net.SplitHostPort(c.HTTP); err != nil {
		bad("http (--http): %q is not host:port (for all interfaces, say 0.0.0.0:8080)", c.HTTP)
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		bad("http (--http): %q: the port must be 0 to 65535 (0: any free port)", c.HTTP)
	}
	switch c.Metrics {
	case "token", "open", "off":
	default:
		bad("metrics (--metrics): %q, want token (a token required when tokens are configured), open or off", c.Metrics)
	}
	if c.InstanceID != "" {
		if err := kafka.CheckInstanceID(c.InstanceID); err != nil {
			bad("instance_id (--instance-id): %q, %v", c.InstanceID, err)
		}
	}
	if c.MaxConnections < 0 {
		bad("max_connections (--max-connections): %d, want 0 (no bound) or more", c.MaxConnections)
	}
	if c.ProjectionMaxLag < 0 {
		bad("projection_max_lag (--projection-max-lag): %d, want 0 (no bound) or more", c.ProjectionMaxLag)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level (--log-level): %q, want debug, info, warn or error", c.Log.Level)
	}
	if _, err := kafka.ParseClientLogLevel(c.Log.Kafka); err != nil {
		bad("log.kafka (--log-kafka): %v", err)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		bad("log.format (--log-format): %q, want text or json", c.Log.Format)
	}
	switch c.SchemaRegistry.WireFormat {
	case "single-object":
	case "confluent":
		if c.SchemaRegistry.URL == "" {
			bad("schema_registry.wire_format (--wire-format) confluent needs schema_registry.url (--schema-registry)")
		}
	default:
		bad("schema_registry.wire_format (--wire-format): %q, want single-object or confluent", c.SchemaRegistry.WireFormat)
	}
	if u := c.SchemaRegistry.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		bad("schema_registry.url (--schema-registry): %q, want an http:// or https:// URL", u)
	}
	problems = append(problems, c.Tracing.Problems()...)
	problems = append(problems, c.Sinks.problems()...)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file (--tls-cert, --tls-key) go together")
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		if c.SASL.Username != "" {
			bad("sasl: username set without a mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			bad("sasl: %s needs a username", c.SASL.Mechanism)
		}
		n := 0
		for _, s := range []string{c.SASL.Password, c.SASL.PasswordFile, c.SASL.PasswordEnv} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			bad("sasl: set exactly one of password, password_file, password_env")
		}
	default:
		bad("sasl.mechanism (--sasl-mechanism): %q, want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	return errors.Join(problems...)
}

// KafkaOpts returns the client options that connect to the brokers: seeds,
// TLS and SASL. Secrets read here never appear in errors.
func (c *Config) KafkaOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.TLS.Enabled || c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.InsecureSkipVerify {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL.Mechanism != "" {
		pw, err := c.SASL.password()
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(c.SASL.Mechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: pw}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: pw}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: pw}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s SASL) password() (string, error) {
	switch {
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("sasl.password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case s.PasswordEnv != "":
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("sasl.password_env: environment variable %s is not set", s.PasswordEnv)
		}
		return v, nil
	}
	return s.Password, nil
}
