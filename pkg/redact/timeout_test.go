package redact

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTimeoutWithholds(t *testing.T) {
	text := keywordHeavyText(2 << 20)
	r := New(Options{Timeout: time.Millisecond})
	_ = Preload() // the one-time load is not what this test measures

	res, err := r.RedactText(context.Background(), text)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("RedactText err = %v, want ErrTimeout", err)
	}
	if !res.Withheld || res.Text != "[WITHHELD:timeout]" || res.Findings != nil {
		t.Errorf("result not withheld: Withheld=%v Text=%.60q findings=%d", res.Withheld, res.Text, len(res.Findings))
	}

	out, fs, err := r.RedactJSON(context.Background(), []byte(`{"log": `+quoteJSON(text)+`}`))
	if !errors.Is(err, ErrTimeout) || out != nil || fs != nil {
		t.Errorf("RedactJSON = %d bytes, %d findings, %v; want nil, nil, ErrTimeout", len(out), len(fs), err)
	}

	found, err := r.HasSecret(context.Background(), text)
	if !errors.Is(err, ErrTimeout) || !found {
		t.Errorf("HasSecret = %v, %v; want true, ErrTimeout", found, err)
	}

	v, fs, err := r.RedactValue(context.Background(), map[string]any{"log": text})
	if !errors.Is(err, ErrTimeout) || v != nil || fs != nil {
		t.Errorf("RedactValue = %v, %v, %v; want nil, nil, ErrTimeout", v != nil, fs, err)
	}
}

func TestAbandonedScanStops(t *testing.T) {
	_ = Preload()
	r := New(Options{Timeout: time.Millisecond})
	for i := 0; i < 4; i++ {
		if _, err := r.RedactText(context.Background(), keywordHeavyText(1<<20)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	}
	// Cancelled scans must notice and stop (within the chunk they are in),
	// not run to completion, which takes seconds for this input.
	start := time.Now()
	for activeScans.Load() > 0 && time.Since(start) < 20*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if n := activeScans.Load(); n > 0 {
		t.Errorf("%d abandoned scans still running after %v", n, time.Since(start))
	}
	t.Logf("abandoned scans stopped %v after the last timeout", time.Since(start))
}

func TestInputTooLargeWithholds(t *testing.T) {
	r := New(Options{MaxInput: 1024})
	text := strings.Repeat("a", 1025)
	res, err := r.RedactText(context.Background(), text)
	if !errors.Is(err, ErrInputTooLarge) || !res.Withheld || res.Text != "[WITHHELD:too-large]" {
		t.Errorf("RedactText = %+v, %v; want withheld, ErrInputTooLarge", res.Withheld, err)
	}
	if out, _, err := r.RedactJSON(context.Background(), []byte(`"`+text+`"`)); !errors.Is(err, ErrInputTooLarge) || out != nil {
		t.Errorf("RedactJSON err = %v, want ErrInputTooLarge", err)
	}
	if res, err := r.RedactText(context.Background(), text[:1024]); err != nil || res.Text != text[:1024] {
		t.Errorf("input at the limit: %v", err)
	}
}

func TestCancelledContextWithholds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := New(Options{}).RedactText(ctx, "password: hunter2")
	if !errors.Is(err, context.Canceled) || !res.Withheld || strings.Contains(res.Text, "hunter2") {
		t.Errorf("RedactText = %+v, %v; want withheld with context.Canceled", res, err)
	}
}

func TestDefaults(t *testing.T) {
	r := New(Options{Timeout: -1, MaxInput: -5})
	if r.timeout != DefaultTimeout || r.maxInput != DefaultMaxInput || !r.gitleaks || !r.pii {
		t.Errorf("New(negative options) = %+v", r)
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
