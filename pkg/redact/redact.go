package redact

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultTimeout bounds a single Redact call when Options.Timeout is zero.
const DefaultTimeout = 250 * time.Millisecond

// DefaultMaxInput is the input size limit in bytes when Options.MaxInput is
// zero. Larger inputs are withheld without being scanned.
const DefaultMaxInput = 4 << 20

var (
	// ErrTimeout means the scan did not finish within Options.Timeout; the
	// output was withheld.
	ErrTimeout = errors.New("redact: scan did not finish within the time limit, output withheld")
	// ErrInputTooLarge means the input exceeded Options.MaxInput; the output
	// was withheld without scanning.
	ErrInputTooLarge = errors.New("redact: input exceeds the size limit, output withheld")
	// ErrScanFailed means a detector could not run (the gitleaks rules did
	// not load, or a detector panicked); the output was withheld.
	ErrScanFailed = errors.New("redact: secret scanner failed, output withheld")
	// ErrInvalidJSON means RedactJSON was given bytes that are not one valid
	// JSON value. Nothing is returned; use RedactText for such input.
	ErrInvalidJSON = errors.New("redact: input is not valid JSON")
)

// Finding is one redacted span.
type Finding struct {
	// RuleID names the detector, e.g. "password-pair", "email", "jwt", or a
	// gitleaks rule id such as "github-pat". Where detectors overlapped, the
	// merged span carries the rule of the finding that starts first.
	RuleID string
	// Start and End are byte offsets of the removed span. For RedactText
	// they index the input text. For RedactJSON and RedactValue they index
	// the decoded string at Path (its object key when Key is true).
	Start, End int
	// Path is the RFC 6901 JSON Pointer of the value that contained the
	// span; empty for RedactText. For a string that held an embedded JSON
	// document (the whole string, or a part of it), the pointer continues
	// into that document. Member names that were themselves redacted appear
	// redacted in Path.
	Path string
	// Key is true when the span is in the object member name at Path rather
	// than in its value.
	Key bool
}

// Result is the outcome of RedactText.
type Result struct {
	// Text is the redacted text. When Withheld is true it is a
	// "[WITHHELD:<reason>]" marker and contains nothing from the input.
	Text string
	// Findings lists the replaced spans, sorted, non-overlapping.
	Findings []Finding
	// Withheld is true when the input could not be scanned completely.
	Withheld bool
}

// Options configures a Redactor. The zero value is the intended default:
// all detectors on, DefaultTimeout, DefaultMaxInput.
type Options struct {
	// Timeout bounds each call; zero or negative means DefaultTimeout. The
	// one-time load of the gitleaks rules (tens of milliseconds) happens
	// before the clock starts.
	Timeout time.Duration
	// DisableGitleaks turns off the gitleaks rule set; only the package's
	// own rules run.
	DisableGitleaks bool
	// DisablePII turns off e-mail, payment card and IBAN detection.
	DisablePII bool
	// PHI turns on the protected health information detectors (phi.go:
	// Social Security, medical record and health plan numbers, dates of
	// birth, diagnosis codes about a person). Off by default.
	PHI bool
	// MaxInput is the largest input in bytes that is scanned; zero or
	// negative means DefaultMaxInput. RedactValue does not check it.
	MaxInput int
	// Secrets are values redacted wherever they appear, by exact match
	// (RuleConfiguredSecret): the credentials the configuration resolves
	// from secret references, so an upstream or API that echoes its own
	// key never hands it to the model or the audit log. Empty strings are
	// ignored.
	Secrets []string
}

// Redactor detects and redacts secrets. It is safe for concurrent use.
type Redactor struct {
	timeout  time.Duration
	gitleaks bool
	pii      bool
	phi      bool
	maxInput int
	known    *knownSecrets
}

// New returns a Redactor configured by opts.
func New(opts Options) *Redactor {
	r := &Redactor{
		timeout:  opts.Timeout,
		gitleaks: !opts.DisableGitleaks,
		pii:      !opts.DisablePII,
		phi:      opts.PHI,
		maxInput: opts.MaxInput,
		known:    newKnownSecrets(opts.Secrets),
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.maxInput <= 0 {
		r.maxInput = DefaultMaxInput
	}
	return r
}

// RedactText returns s with every detected secret replaced. On error the
// result is withheld: Result.Withheld is true and Result.Text holds no part
// of s.
func (r *Redactor) RedactText(ctx context.Context, s string) (Result, error) {
	if len(s) > r.maxInput {
		return withheld(ErrInputTooLarge), fmt.Errorf("%w (%d bytes, limit %d)", ErrInputTooLarge, len(s), r.maxInput)
	}
	var findings []Finding
	err := r.bounded(ctx, func(ctx context.Context) error {
		var err error
		findings, err = r.findInText(ctx, s)
		return err
	})
	if err != nil {
		return withheld(err), err
	}
	return Result{Text: applyFindings(s, findings), Findings: findings}, nil
}

// HasSecret reports whether s contains anything RedactText would remove
// (personal data included unless Options.DisablePII is set). On error it
// returns true together with the error, so a caller that only looks at the
// boolean still fails closed.
func (r *Redactor) HasSecret(ctx context.Context, s string) (bool, error) {
	if len(s) > r.maxInput {
		return true, fmt.Errorf("%w (%d bytes, limit %d)", ErrInputTooLarge, len(s), r.maxInput)
	}
	var found bool
	err := r.bounded(ctx, func(ctx context.Context) error {
		findings, err := r.findInText(ctx, s)
		found = len(findings) > 0
		return err
	})
	if err != nil {
		return true, err
	}
	return found, nil
}

// Preload loads the gitleaks rule set now instead of on first use, so a
// server can pay the one-time cost (~40-80 ms, ~30 MB) at start-up.
func Preload() error {
	_, err := loadGitleaks()
	return err
}

// findInText runs every enabled detector over s and returns merged findings.
func (r *Redactor) findInText(ctx context.Context, s string) ([]Finding, error) {
	findings, late := findOwn(s, r.pii, r.known.find(s, nil))
	if r.phi {
		findings = findPHI(s, findings)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.gitleaks {
		scanner, err := loadGitleaks()
		if err != nil {
			return nil, err
		}
		leaks, err := scanner.scan(ctx, maskFindings(s, findings))
		if err != nil {
			return nil, err
		}
		findings = append(findings, leaks...)
	}
	return addUncovered(findings, late), nil
}

// bounded runs work on a worker goroutine and waits at most r.timeout for
// it. The context passed to work is cancelled when bounded returns, so
// abandoned work stops at its next cancellation check. A panic in work is
// returned as ErrScanFailed.
func (r *Redactor) bounded(ctx context.Context, work func(context.Context) error) error {
	if r.gitleaks {
		// Load outside the clock: the first call must not time out just
		// because it pays the one-time cost.
		if _, err := loadGitleaks(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	done := make(chan error, 1)
	startScan(scanTask{ctx: ctx, work: work, done: done})
	select {
	case err := <-done:
		if err != nil {
			return classify(ctx, err)
		}
		return nil
	case <-ctx.Done():
		return classify(ctx, ctx.Err())
	}
}

// classify turns a context error into ErrTimeout when our own deadline fired.
func classify(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("redact: caller cancelled the scan, output withheld: %w", err)
	}
	return err
}

// withheld builds the Result returned when the input could not be scanned.
func withheld(err error) Result {
	reason := "error"
	switch {
	case errors.Is(err, ErrTimeout):
		reason = "timeout"
	case errors.Is(err, ErrInputTooLarge):
		reason = "too-large"
	case errors.Is(err, context.Canceled):
		reason = "cancelled"
	}
	return Result{Text: "[WITHHELD:" + reason + "]", Withheld: true}
}
