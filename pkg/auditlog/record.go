package auditlog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// A verification record says that a verification of the log up to a size
// passed with a root. Signed with the identity key, it is what
// --incremental starts from: someone who can write the database but holds
// no key cannot move that starting point over entries never verified. The
// signed note's text is
//
//	agentmesh audit verification v1
//	<origin>
//	<mode>
//	<size>
//	<root, base64>
//	time <timestamp>
//
// Its first line holds spaces, so it can never parse as a checkpoint
// (C2SP tlog-checkpoint origin lines have none), and a checkpoint never as
// a record.
const recordHeader = "agentmesh audit verification v1"

func (l *Log) recordBody(mode string, size int64, root tlog.Hash, at time.Time) string {
	return RecordBody(l.origin, mode, size, root, at)
}

// RecordBody is the signed text of a verification record: what a run of
// `audit verify` (mode full or incremental) found for the log of origin at
// tree size with root, at a time. Every store signs the same text.
func RecordBody(origin, mode string, size int64, root tlog.Hash, at time.Time) string {
	return fmt.Sprintf("%s\n%s\n%s\n%d\n%s\ntime %s\n", recordHeader, origin, mode, size,
		base64.StdEncoding.EncodeToString(root[:]), audit.FormatTimestamp(at))
}

func (l *Log) recordVerification(ctx context.Context, rep Report, verr error) error {
	at := l.opts.Now()
	var root []byte
	var signed []byte
	if verr == nil && rep.Root != "" {
		h, err := tlog.ParseHash(rep.Root)
		if err == nil {
			root = h[:]
			if s := l.recordKey(); s != nil {
				signed, err = note.Sign(&note.Note{Text: l.recordBody(rep.Mode, rep.Size, h, at)}, s)
				if err != nil {
					return fmt.Errorf("signing the verification record: %w", err)
				}
			}
		}
	}
	detail := "ok"
	if verr != nil {
		detail = verr.Error()
	}
	return l.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_verifications(at, mode, size, root, ok, detail, note) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			audit.FormatTimestamp(at), rep.Mode, rep.Size, root, verr == nil, detail, signed)
		return err
	})
}

// recordKey is what signs verification records: Options.RecordKey, or a
// writer's own key.
func (l *Log) recordKey() note.Signer {
	if l.recordSigner != nil {
		return l.recordSigner
	}
	return l.signer
}

// fullRecord is the last full verification, as recorded.
type fullRecord struct {
	LastVerification
	Root   tlog.Hash
	signed bool   // its record verifies and says what the row says
	why    string // why not
}

func (r *fullRecord) kind() audit.Kind {
	// The detail of a failed run starts with its kind when it had one.
	for k := audit.KindContentChanged; k <= audit.KindWitnessMissing; k++ {
		if strings.Contains(r.Detail, ": "+k.String()+": ") {
			return k
		}
	}
	return audit.KindContentChanged
}

// lastFull returns the last full verification in v, nil when there was
// none.
func (l *Log) lastFull(v *view) (*fullRecord, error) {
	var r fullRecord
	var at string
	var root, signed []byte
	err := v.tx.QueryRowContext(v.ctx, `SELECT at, mode, size, root, ok, detail, note FROM audit_verifications WHERE mode = 'full' ORDER BY id DESC LIMIT 1`).
		Scan(&at, &r.Mode, &r.Size, &root, &r.OK, &r.Detail, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the last verification: %w", err)
	}
	r.At, _ = audit.ParseTimestamp(at)
	if !r.OK {
		return &r, nil
	}
	if len(root) != len(r.Root) {
		r.why = "it has no root"
		return &r, nil
	}
	copy(r.Root[:], root)
	switch {
	case signed == nil:
		r.why = "it was run without access to the identity key"
	default:
		n, err := note.Open(signed, l.verifiers)
		switch {
		case err != nil:
			r.why = "its signature does not verify: " + err.Error()
		case n.Text != l.recordBody("full", r.Size, r.Root, r.At):
			r.why = "the signed record says something else than the row"
		default:
			r.signed = true
		}
	}
	return &r, nil
}

// LastVerification is the most recent recorded verification.
type LastVerification struct {
	At     time.Time `json:"at"`
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
}

// LastVerification returns the most recent verification, or nil if none.
func (l *Log) LastVerification(ctx context.Context) (*LastVerification, error) {
	var out *LastVerification
	err := l.read(ctx, func(v *view) error {
		var err error
		out, err = v.lastVerification(`SELECT at, mode, size, ok, detail FROM audit_verifications ORDER BY id DESC LIMIT 1`)
		return err
	})
	return out, err
}

func (v *view) lastVerification(q string) (*LastVerification, error) {
	var r LastVerification
	var at string
	err := v.tx.QueryRowContext(v.ctx, q).Scan(&at, &r.Mode, &r.Size, &r.OK, &r.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.At, _ = audit.ParseTimestamp(at)
	return &r, nil
}

// failedSinceFullPass returns the newest failed verification recorded after
// the last full verification that passed: a failure latches until a full
// verification passes.
func (v *view) failedSinceFullPass() (*LastVerification, error) {
	return v.lastVerification(`SELECT at, mode, size, ok, detail FROM audit_verifications
		WHERE ok = 0 AND id > coalesce((SELECT max(id) FROM audit_verifications WHERE mode = 'full' AND ok = 1), 0)
		ORDER BY id DESC LIMIT 1`)
}
