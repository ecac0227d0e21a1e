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
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Partitions != 24 || c.Namespace != "strata" || c.HTTP != "127.0.0.1:8080" || c.SASL.Username != "strata" || c.AuthTokenFile != "/etc/strata/tokens" {
		t.Fatalf("got %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(write(t, "empty.yaml", "")); err != nil || c.Partitions != 12 {
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
	c.SASL = SASL{Mechanism: "GSSAPI"}
	c.TLS.CertFile = "c.pem"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`"nohost" is not host:port`, "partitions (--partitions): 0", `http (--http): "8080"`, "log.level", "sasl.mechanism", "cert_file and key_file"} {
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
