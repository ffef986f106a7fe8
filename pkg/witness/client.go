package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Client submits a log's checkpoints to one witness.
type Client struct {
	// URL is the witness's submission prefix (also used as its
	// monitoring prefix): add-checkpoint is URL + "/add-checkpoint".
	URL string
	// Verifier checks the witness's cosignatures (NewVerifier).
	Verifier note.Verifier
	// HTTP defaults to a client with a 10 s timeout.
	HTTP *http.Client
}

// Conflict is the witness's 409 answer to a wrong old size: it last
// cosigned Size. Retry with a consistency proof from there.
type Conflict struct{ Size int64 }

func (c *Conflict) Error() string {
	return fmt.Sprintf("the witness last cosigned tree size %d", c.Size)
}

// Refused is any other refusal: the status and what the witness said.
// 409 without a size, and 422, mean the checkpoint does not extend what
// the witness cosigned (a fork, or a rollback).
type Refused struct {
	Status int
	Reason string
}

func (r *Refused) Error() string {
	return fmt.Sprintf("the witness refused the checkpoint (%d %s): %s", r.Status, http.StatusText(r.Status), r.Reason)
}

// Fork reports whether the refusal says the log's history diverged from
// what the witness cosigned.
func (r *Refused) Fork() bool {
	return r.Status == http.StatusConflict || r.Status == http.StatusUnprocessableEntity
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (c *Client) endpoint(path string) string { return strings.TrimSuffix(c.URL, "/") + path }

// AddCheckpoint submits signed (a checkpoint note) with a consistency proof
// from oldSize, and returns the witness's cosignature lines after checking
// them with c.Verifier over the checkpoint.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize int64, proof tlog.TreeProof, signed []byte) ([]byte, error) {
	body := (&AddCheckpoint{OldSize: oldSize, Proof: proof, Checkpoint: signed}).Marshal()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/add-checkpoint"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusConflict {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/x.tlog.size" {
			size, err := parseSize(strings.TrimSuffix(string(answer), "\n"))
			if err != nil {
				return nil, fmt.Errorf("the witness answered 409 with a malformed size: %w", err)
			}
			return nil, &Conflict{Size: size}
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Refused{Status: resp.StatusCode, Reason: strings.TrimSpace(string(answer))}
	}
	if _, err := Cosigned(append(append([]byte{}, signed...), answer...), c.Verifier); err != nil {
		return nil, fmt.Errorf("the witness's answer carries no valid cosignature: %w", err)
	}
	return answer, nil
}

// Latest fetches the checkpoint the witness last cosigned for origin (the
// log's signed note with the cosignature), or nil when it has none.
func (c *Client) Latest(ctx context.Context, origin string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/checkpoint?origin="+url.QueryEscape(origin)), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBytes))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		return nil, nil
	}
	return nil, &Refused{Status: resp.StatusCode, Reason: strings.TrimSpace(string(b))}
}

// Cosigned checks that signed carries a valid cosignature by v and returns
// the cosigned time.
func Cosigned(signed []byte, v note.Verifier) (time.Time, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return time.Time{}, fmt.Errorf("no cosignature by %s", v.Name())
		}
		return time.Time{}, err
	}
	return timestampOf(n.Sigs[0])
}
