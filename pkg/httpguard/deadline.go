package httpguard

import (
	"net/http"
	"time"
)

// deadlineWriter gives every write of a response its own deadline
// (write_timeout from the moment the write starts). http.Server's
// WriteTimeout would instead bound the whole response from the end of the
// request headers, cutting long tool calls and the long-lived SSE streams
// of GET /mcp and of POSTs that stream; a per-write deadline only drops a
// client that stops reading.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) arm() { d.rc.SetWriteDeadline(time.Now().Add(d.timeout)) }

func (d *deadlineWriter) WriteHeader(code int) {
	d.arm()
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.arm()
	return d.ResponseWriter.Write(p)
}

// Flush is what SSE streams call after each event.
func (d *deadlineWriter) Flush() {
	d.arm()
	d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
