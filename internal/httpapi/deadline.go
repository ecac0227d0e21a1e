package httpapi

import (
	"net/http"
	"time"
)

// writeDeadline bounds the writing of each answer, from its first byte,
// so that a client that reads slowly (or not at all) cannot hold a
// connection and its goroutine: the connection is closed when the answer
// is not written in time. It is not http.Server's WriteTimeout, which
// counts from the end of the request's headers and so would also cut the
// waits a handler is allowed before answering (a command's result, a
// ?position= read, a rebuild's start); each of those is bounded on its
// own. The server clears the deadline after each answer, so it does not
// carry over to the next request of a kept-alive connection.
type writeDeadline struct {
	d    time.Duration
	next http.Handler
}

func (h writeDeadline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(&deadlineWriter{ResponseWriter: w, d: h.d}, r)
}

type deadlineWriter struct {
	http.ResponseWriter
	d     time.Duration
	armed bool
}

func (w *deadlineWriter) arm() {
	if !w.armed {
		w.armed = true
		// An error means the connection cannot have a deadline (an
		// HTTP/2 stream, a test recorder): nothing to bound.
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.d))
	}
}

func (w *deadlineWriter) WriteHeader(code int) {
	if code >= 200 {
		w.arm()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
