package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// maxProofLines is the most consistency proof lines a request may carry
// (C2SP tlog-witness, "add-checkpoint").
const maxProofLines = 63

// AddCheckpoint is the body of an add-checkpoint request: the tree size of
// the checkpoint the witness last cosigned (as the client believes), a
// consistency proof from that size to the new checkpoint's, and the signed
// checkpoint.
type AddCheckpoint struct {
	OldSize    int64
	Proof      tlog.TreeProof
	Checkpoint []byte // signed note
}

// Marshal encodes the request: "old N\n", one base64 hash per line, an
// empty line, then the checkpoint.
func (r *AddCheckpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddCheckpoint decodes a request body strictly: an "old" line with a
// decimal size without leading zeroes, at most 63 proof lines of canonical
// base64 32-byte hashes, an empty line, and a non-empty checkpoint.
func ParseAddCheckpoint(body []byte) (*AddCheckpoint, error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, errors.New("the request has no \"old\" line")
	}
	n, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return nil, fmt.Errorf("the first line %q is not \"old <size>\"", line)
	}
	old, err := parseSize(n)
	if err != nil {
		return nil, fmt.Errorf("old size: %w", err)
	}
	r := &AddCheckpoint{OldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, errors.New("the request has no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == maxProofLines {
			return nil, fmt.Errorf("more than %d consistency proof lines", maxProofLines)
		}
		h, err := parseHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("consistency proof line %d: %w", len(r.Proof)+1, err)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(rest) == 0 {
		return nil, errors.New("the request carries no checkpoint")
	}
	r.Checkpoint = rest
	return r, nil
}

// parseSize reads an ASCII decimal tree size with no leading zeroes.
func parseSize(s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeroes", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > 1<<62-1 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n, nil
}

func parseHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return tlog.Hash{}, fmt.Errorf("%q is not the base64 encoding of a 32-byte hash", s)
	}
	return tlog.Hash(b), nil
}

// head is what a witness reads of a checkpoint (C2SP tlog-checkpoint): the
// origin, tree size and root hash lines; extension lines are the log's.
type head struct {
	origin string
	size   int64
	root   tlog.Hash
}

func parseHead(text string) (head, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return head{}, errors.New("the checkpoint has fewer than three lines")
	}
	if lines[0] == "" {
		return head{}, errors.New("the checkpoint's origin line is empty")
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return head{}, fmt.Errorf("checkpoint tree size: %w", err)
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return head{}, fmt.Errorf("checkpoint root: %w", err)
	}
	return head{origin: lines[0], size: size, root: root}, nil
}

// originOf returns the first line of a signed note without verifying it.
func originOf(signed []byte) string {
	line, _, _ := bytes.Cut(signed, []byte("\n"))
	return string(line)
}
