package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the soak starts, kills, pauses and restarts: the
// broker or a `strata serve` instance. Its output is appended to one log
// file across restarts, each start marked with a line of its own.
//
// Methods are safe for concurrent use; start, kill, stop, pause and resume
// of one proc are serialized by its mutex.
type proc struct {
	name    string
	exe     string
	args    func() []string // evaluated at each start (data dir may change)
	logPath string
	// onExit is called (in its own goroutine) when the process exits
	// without the soak having killed or stopped it.
	onExit func(p *proc, err error)

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	waitErr error
	killing bool // the soak is killing or stopping it: an exit is expected
	paused  bool
	starts  int
}

// start starts the process; it must not be running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return fmt.Errorf("%s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	args := p.args()
	fmt.Fprintf(logf, "\n==== soak: start %d of %s at %s: %s %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano), p.exe, strings.Join(args, " "))
	cmd := exec.Command(p.exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.killing, p.paused, p.waitErr = cmd, done, false, false, nil
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		unexpected := !p.killing && p.cmd == cmd
		close(done)
		p.mu.Unlock()
		if unexpected && p.onExit != nil {
			p.onExit(p, err)
		}
	}()
	return nil
}

// running reports whether the current process has not exited; p.mu held.
func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Running reports whether the process is running (possibly paused).
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running()
}

// Paused reports whether the process is stopped by SIGSTOP.
func (p *proc) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running() && p.paused
}

// kill sends SIGKILL (a paused process dies too) and waits for the exit.
func (p *proc) kill() {
	p.signalAndWait(syscall.SIGKILL, 0)
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *proc) stop(grace time.Duration) {
	p.signalAndWait(syscall.SIGTERM, grace)
}

func (p *proc) signalAndWait(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return
	}
	p.killing = true
	cmd, done, paused := p.cmd, p.done, p.paused
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process handles nothing
	}
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	<-done
}

// pause sends SIGSTOP.
func (p *proc) pause() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() || p.paused {
		return false
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return false
	}
	p.paused = true
	return true
}

// resume sends SIGCONT.
func (p *proc) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() || !p.paused {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	p.paused = false
}

// pid is the current process's ID, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() {
		return 0
	}
	return p.cmd.Process.Pid
}

// exited returns a channel closed when the current process exits.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 64<<10 {
		_, _ = f.Seek(st.Size()-64<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// errorLines returns the first n lines of a log at level ERROR (text or
// JSON), each cut to 400 bytes.
func errorLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() && len(lines) < n {
		l := sc.Text()
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, `"level":"ERROR"`) {
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			lines = append(lines, l)
		}
	}
	return lines
}

// waitHTTP polls url until it answers 200, the process exits, or d passes.
func waitHTTP(ctx context.Context, url string, exited <-chan struct{}, d time.Duration) error {
	cl := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(d)
	for {
		resp, err := cl.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s", url, d)
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTCP polls addr until it accepts a connection, the process exits, or
// d passes.
func waitTCP(ctx context.Context, addr string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s", addr, d)
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
