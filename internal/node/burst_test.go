package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/httpapi"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/processor"
	"go.uber.org/goleak"
)

// acceptAll is a Sender that accepts every command at once.
type acceptAll struct{}

func (acceptAll) Send(_ context.Context, agg, id string, req processor.Request) (*processor.Result, error) {
	return &processor.Result{CommandID: req.CommandID, Aggregate: agg, AggregateID: id, Status: processor.StatusAccepted, Version: 1}, nil
}

// TestConnectionBurst: 500 connections opened at once to the API's server
// and dropped, in every state a client can leave one (connected,
// mid-headers, mid-body, a whole request whose answer is never read), do
// not keep the server from answering, and leave no goroutine behind:
// while the server runs, their count comes back to what it was, and none
// is left once it is shut down.
func TestConnectionBurst(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	cfg := Config{ReadHeaderTimeout: 2 * time.Second}
	cfg.setDefaults()
	srv := newServer(cfg, httpapi.Handler(httpapi.Config{Sender: acceptAll{}, Applied: position.NewTracker(), Views: map[string]httpapi.View{}}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func() int {
		resp, err := client.Post("http://"+addr+"/v1/commands/account/acc-1", "application/json", strings.NewReader(`{"type":"Deposit","data":{"amount":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 200 {
		t.Fatalf("before the burst: %d", code)
	}
	before := runtime.NumGoroutine()

	for round := range 2 {
		var wg sync.WaitGroup
		conns := make(chan net.Conn, 500)
		for i := range 500 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Errorf("round %d, connection %d: %v", round, i, err)
					return
				}
				switch i % 4 {
				case 1: // mid-headers
					_, _ = c.Write([]byte("POST /v1/commands/account/acc-x HTTP/1.1\r\nHost: strata\r\nContent-Le"))
				case 2: // mid-body
					_, _ = c.Write([]byte("POST /v1/commands/account/acc-x HTTP/1.1\r\nHost: strata\r\nContent-Length: 1000\r\n\r\n{\"type\":"))
				case 3: // a whole request, the answer never read
					_, _ = c.Write([]byte("POST /v1/commands/account/acc-x HTTP/1.1\r\nHost: strata\r\nContent-Length: 38\r\n\r\n{\"type\":\"Deposit\",\"data\":{\"amount\":1}}"))
				}
				conns <- c
			}()
		}
		wg.Wait()
		close(conns)
		// The server answers while the connections are open.
		if code := post(); code != 200 {
			t.Fatalf("round %d, during the burst: %d", round, code)
		}
		for c := range conns {
			_ = c.Close()
		}
		if code := post(); code != 200 {
			t.Fatalf("round %d, after the burst: %d", round, code)
		}
		// Every connection's goroutine ends once its client is gone.
		var now int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if now = runtime.NumGoroutine(); now <= before+2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d goroutines 10s after the burst, %d before", round, now, before)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t, leaks)
}
