// Package sinktest helps the tests of sinks that run against real servers:
// finding them, and cutting the connection to them for a while.
package sinktest

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
)

// Server returns the address the environment variable env gives for a
// real server. Without one the test is skipped, naming the script that
// starts the servers, except when CI is set: CI must run every test.
func Server(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set and CI is: start the servers with compose/sinks-up.sh and export it", env)
		}
		t.Skipf("%s is not set: start the servers with compose/sinks-up.sh and export it", env)
	}
	return v
}

// Proxy forwards a local address to a server until stopped: a server
// that goes away (Stop) and comes back (Start again on the same Addr).
type Proxy struct {
	Addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

// StartProxy forwards a new local port to target (host:port). It stops
// when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target}
	p.listen(t, "127.0.0.1:0")
	t.Cleanup(p.Stop)
	return p
}

// Start accepts connections again on the same address.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	p.listen(t, p.Addr)
}

func (p *Proxy) listen(t testing.TB, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.Addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

// Stop closes the listener and every connection through it: to the
// client, the server is gone.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
