package trust

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

func testModel() Model {
	return Model{
		Initial: 800, RevokeBelow: 300, RecoveryAfter: time.Hour, RecoveryPerHour: 10,
		Tiers: map[string]int{"untrusted": 0, "probationary": 300, "standard": 500, "trusted": 700, "verified": 900},
	}
}

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// TestWorkedExample is the worked example of docs/trust.md, step by step.
func TestWorkedExample(t *testing.T) {
	m := testModel()
	steps := []struct {
		name    string
		ev      Event
		score   int
		revoked bool
		tier    string
	}{
		{"allowed call", Event{Kind: Allowed, Time: at(0)}, 801, false, "trusted"},
		{"policy block, high", Event{Kind: PolicyBlock, Severity: "high", Time: at(1)}, 751, false, "trusted"},
		{"rate limit hit", Event{Kind: RateLimited, Once: "api/limit/a", Until: at(60), Time: at(2)}, 731, false, "trusted"},
		{"same window again: free", Event{Kind: RateLimited, Once: "api/limit/a", Until: at(60), Time: at(3)}, 731, false, "trusted"},
		{"redacted output", Event{Kind: Redacted, Time: at(4)}, 726, false, "trusted"},
		{"path escape refused", Event{Kind: GuardRefusal, Time: at(5)}, 676, false, "standard"},
		{"quiet hour just ended", Event{Kind: Allowed, Time: at(65)}, 677, false, "standard"},
		{"two more quiet hours: +20", Event{Kind: Allowed, Time: at(185)}, 698, false, "standard"},
		{"tool error: neutral", Event{Kind: Neutral, Time: at(186)}, 698, false, "standard"},
		{"critical block", Event{Kind: PolicyBlock, Severity: "critical", Time: at(187)}, 598, false, "standard"},
		{"critical block", Event{Kind: PolicyBlock, Severity: "critical", Time: at(188)}, 498, false, "probationary"},
		{"credential failure", Event{Kind: CredentialFailure, Time: at(189)}, 398, false, "probationary"},
		{"critical block: revoked", Event{Kind: PolicyBlock, Severity: "critical", Time: at(190)}, 298, true, "untrusted"},
		{"refused while revoked: no spiral", Event{Kind: PolicyBlock, Severity: "critical", Time: at(191)}, 298, true, "untrusted"},
		{"allowed while revoked: no change", Event{Kind: Allowed, Time: at(192)}, 298, true, "untrusted"},
		{"days later: still latched", Event{Kind: Neutral, Time: at(60 * 24 * 3)}, 298, true, "untrusted"},
		{"operator reset", Event{Kind: Reset, Time: at(60*24*3 + 1)}, 800, false, "trusted"},
	}
	s := m.Fresh()
	for i, st := range steps {
		s = m.Apply(s, st.ev)
		if s.Score != st.score || s.Revoked != st.revoked || m.Tier(s.Score) != st.tier {
			t.Fatalf("step %d (%s): score %d revoked %v tier %s; want %d %v %s", i+1, st.name, s.Score, s.Revoked, m.Tier(s.Score), st.score, st.revoked, st.tier)
		}
	}
}

func TestRevocationReachableByViolationsAlone(t *testing.T) {
	m := testModel()
	s := m.Fresh()
	n := 0
	for !s.Revoked {
		s = m.Apply(s, Event{Kind: PolicyBlock, Severity: "low", Time: at(n)})
		n++
		if n > 1000 {
			t.Fatal("low-severity blocks never revoke")
		}
	}
	if s.Score >= m.RevokeBelow || n != 51 {
		t.Fatalf("revoked after %d low blocks at score %d; want 51 blocks, below %d", n, s.Score, m.RevokeBelow)
	}
	// The score can go below the threshold, and to zero, never below.
	m.RevokeBelow = 0
	s = m.Fresh()
	for i := 0; i < 20; i++ {
		s = m.Apply(s, Event{Kind: PolicyBlock, Severity: "critical", Time: at(i)})
	}
	if s.Score != 0 {
		t.Fatalf("score after 20 critical blocks = %d, want 0", s.Score)
	}
}

func TestRecoveryIsBounded(t *testing.T) {
	m := testModel()
	s := m.Apply(m.Fresh(), Event{Kind: PolicyBlock, Severity: "critical", Time: at(0)}) // 700
	tests := []struct {
		min  int
		want int
	}{
		{30, 700},       // still within the quiet period
		{60, 700},       // quiet period just over
		{66, 701},       // 6 minutes = 1 point
		{120, 710},      // 1 hour of recovery
		{60 * 11, 800},  // 10 hours: back at the baseline
		{60 * 100, 800}, // never above the baseline by recovery
	}
	for _, tt := range tests {
		if got := m.At(s, at(tt.min)).Score; got != tt.want {
			t.Errorf("score at +%dm = %d, want %d", tt.min, got, tt.want)
		}
	}
	// Recovery is credited once: applying at several times gives the same
	// result as applying once at the end.
	stepwise := s
	for min := 61; min <= 600; min += 7 {
		stepwise = m.Apply(stepwise, Event{Kind: Neutral, Time: at(min)})
	}
	once := m.Apply(s, Event{Kind: Neutral, Time: at(600)})
	if stepwise.Score != once.Score {
		t.Errorf("stepwise recovery %d != one-shot %d", stepwise.Score, once.Score)
	}
	// A score above the baseline (earned by good behaviour) is not pulled down.
	high := State{Score: 950, LastViolation: at(0)}
	if got := m.At(high, at(600)).Score; got != 950 {
		t.Errorf("recovery moved a score above the baseline to %d", got)
	}
	// No recovery while revoked.
	rev := State{Score: 100, Revoked: true, LastViolation: at(0)}
	if got := m.At(rev, at(6000)); got.Score != 100 || !got.Revoked {
		t.Errorf("recovery while revoked: %+v", got)
	}
}

func TestRateLimitCostsOncePerWindow(t *testing.T) {
	m := testModel()
	s := m.Fresh()
	for i := 0; i < 50; i++ {
		s = m.Apply(s, Event{Kind: RateLimited, Once: "p/r/a", Until: at(60), Time: at(1)})
	}
	if s.Score != 780 {
		t.Fatalf("50 refusals in one window: score %d, want 780", s.Score)
	}
	s = m.Apply(s, Event{Kind: RateLimited, Once: "p/r/a", Until: at(120), Time: at(61)})
	if s.Score != 760 {
		t.Fatalf("a hit in the next window: score %d, want 760", s.Score)
	}
	s = m.Apply(s, Event{Kind: RateLimited, Once: "p/other/a", Until: at(120), Time: at(62)})
	if s.Score != 740 {
		t.Fatalf("another rule's window: score %d, want 740", s.Score)
	}
	if len(s.Windows) != 2 {
		t.Fatalf("windows kept: %v", s.Windows)
	}
}

func TestTier(t *testing.T) {
	m := testModel()
	for score, want := range map[int]string{0: "untrusted", 299: "untrusted", 300: "probationary", 699: "standard", 700: "trusted", 1000: "verified"} {
		if got := m.Tier(score); got != want {
			t.Errorf("Tier(%d) = %s, want %s", score, got, want)
		}
	}
}
