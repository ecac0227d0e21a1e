package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/httpapi"
)

// serve runs newServer(cfg) with a handler that answers 200, and returns
// its address.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.setDefaults()
	srv := newServer(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	cfg.HTTPAddr = "127.0.0.1:0"
	ln, err := listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestServerDefaults(t *testing.T) {
	cfg := Config{}
	cfg.setDefaults()
	if cfg.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("default address %s: want 127.0.0.1:8080, reachable from this machine only", cfg.HTTPAddr)
	}
	srv := newServer(cfg, http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second || srv.IdleTimeout != 2*time.Minute || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("limits: header %s, read %s, idle %s, header bytes %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// TestSlowHeadersAreCutOff: a client sending its headers a byte at a time
// (slowloris) loses its connection when ReadHeaderTimeout ends, however
// steadily it sends.
func TestSlowHeadersAreCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := serve(t, Config{ReadHeaderTimeout: timeout})
	// The server's clock starts when it accepts the connection, which can
	// be before Dial returns: start ours first, or a cut-off right on
	// time looks early (seen: 299.48ms).
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		// Never ends its headers: "GET / HTTP/1.1\r\nX: aaaa…".
		req := "GET / HTTP/1.1\r\nHost: strata\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The server may say 400 before it hangs up; either way the
	// connection ends.
	answer, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s of slow headers", elapsed)
	}
	if strings.Contains(string(answer), " 200 ") {
		t.Fatalf("the server answered slow headers: %q", answer)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("cut off after %s, want about %s", elapsed, timeout)
	}
}

// TestHeadersTooLarge: a request whose headers exceed MaxHeaderBytes (plus
// the few KiB net/http allows on top) is refused with 431.
func TestHeadersTooLarge(t *testing.T) {
	addr := serve(t, Config{})
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 80<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 32<<10))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("32 KiB of headers: status %d, want 200", resp.StatusCode)
	}
}

// TestAuthSummary: what the node logs at start says whether tokens are
// required, and how many, never which.
func TestAuthSummary(t *testing.T) {
	const tok = "0123456789abcdef-secret"
	tokens, err := httpapi.ParseTokens("tokens", strings.NewReader(tok+"\nread-only ro-"+tok+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := authSummary(tokens); s != "bearer tokens (1 read-write, 1 read-only)" {
		t.Errorf("with tokens: %q", s)
	}
	if s := authSummary(nil); !strings.HasPrefix(s, "off") {
		t.Errorf("without: %q", s)
	}
}

// TestConnectionsAreBounded: with MaxConnections open, the next client
// waits to be accepted instead of taking a goroutine and buffers; it is
// served as soon as one of them closes.
func TestConnectionsAreBounded(t *testing.T) {
	addr := serve(t, Config{MaxConnections: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	get := func(timeout time.Duration) error {
		cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	if err := get(300 * time.Millisecond); err == nil {
		t.Fatal("a third connection was served while two were open, with MaxConnections 2")
	}
	held[0].Close()
	if err := get(5 * time.Second); err != nil {
		t.Fatalf("once a connection closed, the next client: %v", err)
	}
}
