package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, "strata.yaml", `
brokers: [k1:9092, k2:9092]
partitions: 24
sasl:
  mechanism: SCRAM-SHA-512
  username: strata
  password_env: STRATA_KAFKA_PASSWORD
auth_token_file: /etc/strata/tokens
tracing:
  exporter: otlp
  protocol: grpc
  endpoint: collector:4317
  headers: {api-key: s3cret}
  insecure: true
metrics: open
projection_max_lag: 5000
instance_id: strata-0
max_connections: 64
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Partitions != 24 || c.Namespace != "strata" || c.HTTP != "127.0.0.1:8080" || c.SASL.Username != "strata" || c.AuthTokenFile != "/etc/strata/tokens" ||
		c.Metrics != "open" || c.ProjectionMaxLag != 5000 || c.InstanceID != "strata-0" || c.MaxConnections != 64 {
		t.Fatalf("got %+v", c)
	}
	if tr := c.Tracing; tr.Exporter != "otlp" || tr.Protocol != "grpc" || tr.Endpoint != "collector:4317" || tr.Headers["api-key"] != "s3cret" || !tr.Insecure || tr.SampleRatio != 1 {
		t.Fatalf("tracing: %+v (the sample ratio defaults to 1)", tr)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// YAML 1.1 would read off as false; the field is a string either way.
	if c, err := Load(write(t, "off.yaml", "metrics: off\n")); err != nil || c.Metrics != "off" || c.Validate() != nil {
		t.Fatalf("metrics: off: %+v %v", c.Metrics, err)
	}
	if c, err := Load(write(t, "empty.yaml", "")); err != nil || c.Partitions != 12 || c.Metrics != "token" || c.ProjectionMaxLag != 100000 {
		t.Fatalf("empty file: %+v %v", c, err)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	p := write(t, "bad.yaml", "brokers: [k:9092]\npartitons: 3\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "partitons") {
		t.Fatalf("err = %v", err)
	}
	p = write(t, "typo.yaml", "brokers: [k:9092]\nauth_tokens_file: /etc/strata/tokens\n")
	if _, err = Load(p); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "auth_tokens_file") {
		t.Fatalf("misspelt auth_token_file: %v", err)
	}
	_, err = Load(write(t, "syntax.yaml", "brokers: [k:9092\n"))
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("syntax err = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Defaults()
	c.Brokers = []string{"nohost"}
	c.Partitions = 0
	c.HTTP = "8080"
	c.Log.Level = "loud"
	c.Log.Kafka = "chatty"
	c.SASL = SASL{Mechanism: "GSSAPI"}
	c.TLS.CertFile = "c.pem"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`"nohost" is not host:port`, "partitions (--partitions): 0", `http (--http): "8080"`, "log.level", `log.kafka (--log-kafka): "chatty", want off, error, warn, info or debug`, "sasl.mechanism", "cert_file and key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func ping(t *testing.T, opts []kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestSASLAgainstKfake(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "strata", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cfg := Defaults()
			cfg.Brokers = c.ListenAddrs()
			cfg.SASL = SASL{Mechanism: mech, Username: "strata", PasswordFile: write(t, "pw", "s3cret\n")}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			opts, err := cfg.KafkaOpts()
			if err != nil {
				t.Fatal(err)
			}
			if err := ping(t, opts); err != nil {
				t.Fatalf("authenticated client: %v", err)
			}
			cfg.SASL = SASL{Mechanism: mech, Username: "strata", Password: "wrong"}
			opts, _ = cfg.KafkaOpts()
			err = ping(t, opts)
			if err == nil {
				t.Fatal("a wrong password was accepted")
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Fatalf("the error echoes the password: %v", err)
			}
		})
	}
}

func TestTLSAgainstKfake(t *testing.T) {
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := selfSigned(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Defaults()
	cfg.Brokers = c.ListenAddrs()
	cfg.TLS = TLS{CAFile: caFile}
	opts, err := cfg.KafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(t, opts); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	// Without the CA the broker's certificate is not trusted.
	cfg.TLS = TLS{Enabled: true}
	opts, _ = cfg.KafkaOpts()
	if err := ping(t, opts); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	cfg.TLS = TLS{CAFile: filepath.Join(dir, "nope.pem")}
	if _, err := cfg.KafkaOpts(); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
}

// selfSigned returns a CA-signed-by-itself certificate for 127.0.0.1.
func selfSigned(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strata test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return certPEM, certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// TestParseErrorsNameTheLine: every kind of broken YAML is refused naming
// the file and the line it is on (and the column, where the problem is a
// byte), whichever part of the YAML library finds it.
func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"a tab indenting the first line", "\tpartitions: 3\n", "config f.yaml, line 1: found character that cannot start any token"},
		{"a tab indenting a later line", "partitions: 3\n\tbrokers: []\n", "config f.yaml, line 2: found a tab character"},
		{"an unclosed flow sequence", "partitions: 3\nnamespace: x\nbrokers: [k:9092\n", "config f.yaml, line 3: did not find expected ',' or ']'"},
		{"an unclosed flow mapping", "partitions: 3\nlog: {level: [}\n", "config f.yaml, line 2: did not find expected node content"},
		{"an unclosed quote", "partitions: 3\nnamespace: \"x\n", "config f.yaml, line 2: found unexpected end of stream"},
		{"a stray colon", "partitions: 3\nnamespace: x: y\n", "config f.yaml, line 2: mapping values are not allowed"},
		{"a bad indentation", "log:\n  level: info\n format: json\n", "config f.yaml, line 3: did not find expected key"},
		{"an unknown key", "brokers: [k:9092]\npartitons: 3\n", "line 2: field partitons not found"},
		{"a key twice", "partitions: 3\npartitions: 4\n", `line 2: mapping key "partitions" already defined at line 1`},
		{"a word for a number", "partitions: many\n", "line 1: cannot unmarshal !!str `many` into int"},
		{"a number for a duration", "partitions: 3\ndedupe_window: 5\n", "line 2: cannot unmarshal !!int `5` into time.Duration"},
		{"a word for a duration", "dedupe_window: forever\n", "line 1: cannot unmarshal !!str `forever` into time.Duration"},
		{"a string for a list", "brokers: k:9092\n", "line 1: cannot unmarshal !!str `k:9092` into []string"},
		{"a list for the file", "- brokers\n", "line 1: cannot unmarshal !!seq into config.Config"},
		{"a second document", "partitions: 3\n---\nhttp: 0.0.0.0:80\n", "config f.yaml, line 3: a second YAML document"},
		{"not UTF-8", "partitions: 3\nnamespace: caf\xe9\n", "config f.yaml, line 2, column 15: not valid UTF-8"},
		{"a control character", "partitions: 3\nnamespace: a\x01b\n", "config f.yaml, line 2, column 13: control characters are not allowed"},
		{"a NUL", "partitions: 3\x00\n", "config f.yaml, line 1, column 14: control characters are not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config f.yaml") {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A document marker alone, or an empty document after it, is fine.
	for _, ok := range []string{"---\npartitions: 3\n", "partitions: 3\n---\n", "partitions: 3\n...\n", "# only a comment\n", "~\n"} {
		if _, err := Parse("f.yaml", []byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestValidateNamesTheFlag: impossible values are refused naming the
// setting and its flag.
func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"negative partitions", func(c *Config) { c.Partitions = -1 }, "partitions (--partitions): -1, want 1 to 10000"},
		{"too many partitions", func(c *Config) { c.Partitions = 1 << 20 }, "partitions (--partitions): 1048576"},
		{"replication factor 0", func(c *Config) { c.ReplicationFactor = 0 }, "replication_factor (--replication-factor): 0"},
		{"snapshot every 0", func(c *Config) { c.SnapshotEvery = 0 }, "snapshot_every (--snapshot-every): 0"},
		{"a dedupe window of 0", func(c *Config) { c.DedupeWindow = 0 }, "dedupe_window (--dedupe-window): 0s"},
		{"a negative read wait", func(c *Config) { c.ReadWait = -time.Second }, "read_wait (--read-wait) -1s"},
		{"read wait above its maximum", func(c *Config) { c.ReadWait = time.Minute }, "read_wait_max (--read-wait-max) 30s"},
		{"no data directory", func(c *Config) { c.Data = "" }, "data (--data)"},
		{"an HTTP port out of range", func(c *Config) { c.HTTP = "127.0.0.1:99999" }, `http (--http): "127.0.0.1:99999": the port must be 0 to 65535`},
		{"an HTTP address without a port", func(c *Config) { c.HTTP = "localhost" }, `http (--http): "localhost" is not host:port`},
		{"a broker port out of range", func(c *Config) { c.Brokers = []string{"k:0"} }, `brokers (--brokers): "k:0": the port must be 1 to 65535`},
		{"a broker port that is no number", func(c *Config) { c.Brokers = []string{"k:kafka-port"} }, `brokers (--brokers): "k:kafka-port": the port must be`},
		{"a namespace with a space", func(c *Config) { c.Namespace = "my ns" }, `namespace (--namespace): "my ns" must be lower-case letters`},
		{"an empty namespace", func(c *Config) { c.Namespace = "" }, `namespace (--namespace): "" must be 1 to 64 characters`},
		{"a namespace with a dot", func(c *Config) { c.Namespace = "a.b" }, `namespace (--namespace): "a.b"`},
		{"an unknown log format", func(c *Config) { c.Log.Format = "xml" }, `log.format (--log-format): "xml"`},
		{"an unknown wire format", func(c *Config) { c.SchemaRegistry.WireFormat = "protobuf" }, `schema_registry.wire_format (--wire-format): "protobuf"`},
		{"a registry URL that is no URL", func(c *Config) { c.SchemaRegistry.URL = "registry:8081" }, `schema_registry.url (--schema-registry): "registry:8081"`},
		{"an unknown tracing exporter", func(c *Config) { c.Tracing.Exporter = "zipkin" }, `tracing.exporter (--tracing-exporter): "zipkin"`},
		{"a tracing endpoint without a port", func(c *Config) { c.Tracing.Endpoint = "collector" }, `tracing.endpoint (--tracing-endpoint): "collector"`},
		{"a sample ratio above 1", func(c *Config) { c.Tracing.SampleRatio = 1.5 }, "tracing.sample_ratio (--tracing-sample-ratio): 1.5"},
		{"a SASL password twice", func(c *Config) { c.SASL = SASL{Mechanism: "PLAIN", Username: "u", Password: "p", PasswordEnv: "P"} }, "sasl: set exactly one of"},
		{"an unknown metrics access", func(c *Config) { c.Metrics = "public" }, `metrics (--metrics): "public", want token`},
		{"a negative projection lag bound", func(c *Config) { c.ProjectionMaxLag = -1 }, "projection_max_lag (--projection-max-lag): -1"},
		{"an instance ID with a slash", func(c *Config) { c.InstanceID = "pod/0" }, `instance_id (--instance-id): "pod/0"`},
		{"an instance ID in capitals", func(c *Config) { c.InstanceID = "Strata-0" }, `instance_id (--instance-id): "Strata-0"`},
		{"a negative connection bound", func(c *Config) { c.MaxConnections = -1 }, "max_connections (--max-connections): -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.set(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	c := Defaults()
	c.Brokers = []string{"k1:9092", "[::1]:9093"}
	c.HTTP = ":0"
	if err := c.Validate(); err != nil {
		t.Fatalf("good values: %v", err)
	}
}

// FuzzParse: a config file of any content is read or refused, never
// panics; a refusal names the file; a file that is read validates without
// panicking and round-trips: written back as YAML, it reads the same.
func FuzzParse(f *testing.F) {
	f.Add([]byte("brokers: [k1:9092, k2:9092]\npartitions: 24\nsasl:\n  mechanism: SCRAM-SHA-512\n  username: strata\n  password_env: P\nauth_token_file: /etc/strata/tokens\n"))
	f.Add([]byte("dedupe_window: 36h\nread_wait: 250ms\nread_wait_max: 1m\nlog: {level: debug, format: json}\ntls: {enabled: true, ca_file: ca.pem}\n"))
	f.Add([]byte("schema_registry:\n  url: http://r:8081\n  wire_format: confluent\nreplication_factor: 3\nsnapshot_every: 5\n"))
	f.Add([]byte("tracing:\n  exporter: otlp\n  endpoint: https://c:4318\n  headers: {}\n  sample_ratio: .nan\n"))
	f.Add([]byte("metrics: off\nprojection_max_lag: 0\n"))
	f.Add([]byte("brokers: [k:9092\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("partitions: 3\n---\nhttp: x\n"))
	f.Add([]byte("\tpartitions: 3\x00\xff"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config fuzz.yaml") {
					t.Fatalf("a problem that does not name the file: %q", line)
				}
			}
			return
		}
		_ = c.Validate()
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		back, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("%+v written as\n%s\ndoes not read back: %v", c, out, err)
		}
		if len(c.Brokers) == 0 {
			c.Brokers = nil // nil and empty both write as []
		}
		if len(back.Brokers) == 0 {
			back.Brokers = nil
		}
		if len(c.Tracing.Headers) == 0 {
			c.Tracing.Headers = nil // nil and empty are both left out
		}
		if c.Tracing.SampleRatio != c.Tracing.SampleRatio && back.Tracing.SampleRatio != back.Tracing.SampleRatio {
			c.Tracing.SampleRatio, back.Tracing.SampleRatio = 0, 0 // NaN (.nan) is not equal to itself
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip:\n%+v\n%s\n%+v", c, out, back)
		}
	})
}

// TestPostgresSink: the connection string comes from exactly one of url,
// url_file, url_env; a missing variable is named.
func TestPostgresSink(t *testing.T) {
	c, err := Parse("c.yaml", []byte("sinks:\n  postgres: {url_env: STRATA_TEST_PG_URL_X, schema: views, views: [orders, accounts]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if pg := c.Sinks.Postgres; len(pg.Views) != 2 || pg.Schema != "views" {
		t.Fatalf("sinks.postgres: %+v", c.Sinks.Postgres)
	}
	if _, err := c.Sinks.Postgres.ConnURL(); err == nil || !strings.Contains(err.Error(), "STRATA_TEST_PG_URL_X") {
		t.Errorf("unset variable: %v", err)
	}
	t.Setenv("STRATA_TEST_PG_URL_X", "postgres://u:p@h/db")
	if u, err := c.Sinks.Postgres.ConnURL(); err != nil || u != "postgres://u:p@h/db" {
		t.Errorf("from the environment: %q %v", u, err)
	}
	f := filepath.Join(t.TempDir(), "url")
	os.WriteFile(f, []byte("postgres://file@h/db\n"), 0o600)
	c.Sinks.Postgres = Postgres{URLFile: f, Views: []string{"orders"}}
	if u, err := c.Sinks.Postgres.ConnURL(); err != nil || u != "postgres://file@h/db" {
		t.Errorf("from a file: %q %v", u, err)
	}
	c.Sinks.Postgres = Postgres{URL: "postgres://h/db", URLEnv: "X", Views: []string{"orders"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "exactly one of url, url_file, url_env") {
		t.Errorf("two URLs: %v", err)
	}
}
