package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// maxRequestBytes bounds an add-checkpoint body: a checkpoint, its
// signatures and 63 proof lines fit in a few kilobytes.
const maxRequestBytes = 64 << 10

// Server is a tlog-witness. It is safe for concurrent use; one process
// should own a Dir (see Lock).
type Server struct {
	dir    string
	signer *Signer
	logs   map[string]note.Verifiers // trusted log keys by origin
	// Logf reports refusals worth an operator's attention; nil for none.
	Logf func(format string, args ...any)

	// mu makes each check-and-persist atomic (C2SP tlog-witness: a
	// witness must never roll a log back between two requests).
	mu sync.Mutex
}

// NewServer returns a witness keeping its state in dir, cosigning with
// signer, for the logs whose verifier keys are given (a log's origin is
// its key name; several keys of one origin are all trusted).
func NewServer(dir string, signer *Signer, logKeys []string) (*Server, error) {
	byOrigin := map[string][]note.Verifier{}
	for _, k := range logKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("log key %q: %w (want the log's verifier key, as `agentmesh identity show` prints it)", k, err)
		}
		byOrigin[v.Name()] = append(byOrigin[v.Name()], v)
	}
	if len(byOrigin) == 0 {
		return nil, errors.New("a witness needs at least one log to witness (--log VKEY)")
	}
	s := &Server{dir: dir, signer: signer, logs: map[string]note.Verifiers{}}
	for o, vs := range byOrigin {
		s.logs[o] = note.VerifierList(vs...)
	}
	for _, sub := range []string{"logs", "evidence"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("witness state: %w", err)
		}
	}
	return s, nil
}

// Lock takes the witness directory for this process: two servers sharing
// a directory could each cosign a different extension.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, ok, err := state.TryLockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("another witness is serving from %s", dir)
	}
	return unlock, nil
}

// Handler serves POST /add-checkpoint and GET /checkpoint?origin=O.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/add-checkpoint", s.addCheckpoint)
	mux.HandleFunc("/checkpoint", s.latest)
	return mux
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) statePath(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, "logs", hex.EncodeToString(sum[:16])+".checkpoint")
}

// stored returns the latest checkpoint cosigned for origin (nil, size 0
// when none) and its head.
func (s *Server) stored(origin string, vs note.Verifiers) ([]byte, head, error) {
	b, err := os.ReadFile(s.statePath(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, head{origin: origin}, nil
	}
	if err != nil {
		return nil, head{}, err
	}
	n, err := note.Open(b, vs)
	if err != nil {
		return nil, head{}, fmt.Errorf("the witness's own record of %s does not verify: %w", origin, err)
	}
	h, err := parseHead(n.Text)
	return b, h, err
}

func plain(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, format+"\n", args...)
}

func (s *Server) addCheckpoint(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		plain(w, http.StatusMethodNotAllowed, "add-checkpoint takes POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		plain(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", maxRequestBytes)
		return
	}
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		plain(w, http.StatusBadRequest, "malformed add-checkpoint request: %v", err)
		return
	}
	origin := originOf(req.Checkpoint)
	vs, ok := s.logs[origin]
	if !ok {
		plain(w, http.StatusNotFound, "unknown log origin %q", origin)
		return
	}
	n, err := note.Open(req.Checkpoint, vs)
	if err != nil {
		plain(w, http.StatusForbidden, "the checkpoint carries no valid signature by a key trusted for %q", origin)
		return
	}
	h, err := parseHead(n.Text)
	if err != nil || h.origin != origin {
		plain(w, http.StatusBadRequest, "malformed checkpoint: %v", err)
		return
	}
	if req.OldSize > h.size {
		plain(w, http.StatusBadRequest, "old size %d is larger than the checkpoint's tree size %d", req.OldSize, h.size)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	_, last, err := s.stored(origin, vs)
	if err != nil {
		s.logf("witness: %v", err)
		plain(w, http.StatusInternalServerError, "the witness cannot read its state")
		return
	}
	if req.OldSize != last.size {
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "%d\n", last.size)
		return
	}
	switch {
	case req.OldSize == 0 && len(req.Proof) != 0:
		s.evidence(origin, body, "a consistency proof from the empty tree must be empty")
		plain(w, http.StatusUnprocessableEntity, "a consistency proof from tree size 0 must be empty")
		return
	case req.OldSize == h.size && last.size > 0 && h.root != last.root:
		s.evidence(origin, body, "same size, different root: a fork")
		plain(w, http.StatusConflict, "tree size %d was cosigned with root %s, not %s: the log forked", h.size, last.root, h.root)
		return
	case req.OldSize > 0 && req.OldSize < h.size:
		if err := tlog.CheckTree(req.Proof, h.size, h.root, last.size, last.root); err != nil {
			s.evidence(origin, body, "the consistency proof does not verify")
			s.logf("witness: refused %s tree size %d: not consistent with the cosigned tree size %d", origin, h.size, last.size)
			plain(w, http.StatusUnprocessableEntity, "the consistency proof does not show tree size %d (root %s) to extend the cosigned tree size %d (root %s)", h.size, h.root, last.size, last.root)
			return
		}
	}
	signed, err := note.Sign(n, s.signer)
	if err != nil {
		plain(w, http.StatusInternalServerError, "cosigning failed")
		return
	}
	cosig := signatureLines(signed, s.signer.Name())
	// The stored record is the log's signed checkpoint with this
	// cosignature: persisted before answering.
	record := append(append([]byte{}, req.Checkpoint...), cosig...)
	if err := state.WriteFileAtomic(s.statePath(origin), record); err != nil {
		s.logf("witness: persisting %s: %v", origin, err)
		plain(w, http.StatusInternalServerError, "the witness cannot persist its state")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(cosig)
}

// signatureLines returns the signature lines of a signed note by the key
// named name.
func signatureLines(signed []byte, name string) []byte {
	var out []byte
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("— "+name+" ")) {
			out = append(out, line...)
		}
	}
	return out
}

// evidence keeps a refused request of a known log with a valid signature:
// it may prove the log's misbehaviour.
func (s *Server) evidence(origin string, body []byte, why string) {
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + ".txt"
	text := append([]byte("# refused: "+why+"\n# origin: "+origin+"\n"), body...)
	if err := os.WriteFile(filepath.Join(s.dir, "evidence", name), text, 0o600); err != nil {
		s.logf("witness: keeping evidence: %v", err)
	}
}

// latest serves the checkpoint last cosigned for ?origin=.
func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "checkpoint takes GET")
		return
	}
	origin := r.URL.Query().Get("origin")
	vs, ok := s.logs[origin]
	if !ok {
		plain(w, http.StatusNotFound, "unknown log origin %q", origin)
		return
	}
	s.mu.Lock()
	b, last, err := s.stored(origin, vs)
	s.mu.Unlock()
	switch {
	case err != nil:
		plain(w, http.StatusInternalServerError, "the witness cannot read its state")
	case b == nil:
		plain(w, http.StatusNotFound, "no checkpoint of %q cosigned yet", origin)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Tree-Size", strconv.FormatInt(last.size, 10))
		w.Write(b)
	}
}
