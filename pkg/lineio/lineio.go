// Package lineio bounds newline-delimited message streams such as MCP's
// stdio transport (MCP 2025-11-25, "Transports: stdio": messages are
// delimited by newlines and must not contain embedded newlines).
package lineio

import (
	"bufio"
	"errors"
	"io"
)

// Oversized replaces a line longer than the limit. A JSON-RPC peer answers
// it with a parse error (or skips it), so one huge message neither exhausts
// memory nor stops the stream.
const Oversized = "oversized-message\n"

// Limiter passes lines through and replaces any line longer than Max bytes
// with [Oversized].
type Limiter struct {
	r   *bufio.Reader
	max int
	// OnOversize, if set, is called with the length read so far of each
	// replaced line.
	OnOversize func(n int)
	pending    []byte
}

// NewLimiter returns a Limiter reading r.
func NewLimiter(r io.Reader, max int) *Limiter {
	return &Limiter{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

func (l *Limiter) Read(p []byte) (int, error) {
	if len(l.pending) == 0 {
		line, err := l.readLine()
		if len(line) == 0 && err != nil {
			return 0, err
		}
		l.pending = line
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

func (l *Limiter) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(line)+len(chunk) > l.max {
			n := len(line) + len(chunk)
			// Discard the rest of this line.
			for errors.Is(err, bufio.ErrBufferFull) {
				chunk, err = l.r.ReadSlice('\n')
				n += len(chunk)
			}
			if l.OnOversize != nil {
				l.OnOversize(n)
			}
			return []byte(Oversized), nilIfFull(err)
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

func nilIfFull(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil
	}
	return err
}
