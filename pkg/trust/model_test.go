package trust

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

func testModel() Model {
	return Model{
		Initial: 800, RevokeBelow: 300, RecoveryAfter: time.Hour, RecoveryPerHour: 10,
		Tiers:   map[string]int{"untrusted": 0, "probationary": 300, "standard": 500, "trusted": 700, "verified": 900},
		Weights: DefaultWeights(), RepeatWindow: time.Hour, DailyGainAboveInitial: 10,
	}
}

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// once keys a refusal for its repeat window, as the pipeline does.
func once(key string, from int) (string, time.Time) { return key, at(from + 60) }

// TestWorkedExample is the worked example of docs/trust.md, step by step.
func TestWorkedExample(t *testing.T) {
	m := testModel()
	hosts, hostsUntil := once("mistake/root/filesystem_read//etc/hosts", 2)
	trav, travUntil := once("attack/traversal/filesystem_read//data/../../etc/passwd", 6)
	steps := []struct {
		name    string
		ev      Event
		score   int
		revoked bool
		tier    string
	}{
		{"allowed call (at the baseline: today's first gain)", Event{Kind: Allowed, Time: at(0)}, 801, false, "trusted"},
		{"the server's own data redacted: free", Event{Kind: Redacted, Time: at(1)}, 801, false, "trusted"},
		{"read /etc/hosts: a path in no mount", Event{Kind: Mistake, Once: hosts, Until: hostsUntil, Time: at(2)}, 796, false, "trusted"},
		{"the same mistake again: free", Event{Kind: Mistake, Once: hosts, Until: hostsUntil, Time: at(3)}, 796, false, "trusted"},
		{"a redact rule withheld an output: free", Event{Kind: Withheld, Time: at(4)}, 796, false, "trusted"},
		{"refused by a rule reading trust_score: free", Event{Kind: Neutral, Time: at(5)}, 796, false, "trusted"},
		{"traversal: an attack", Event{Kind: Attack, Once: trav, Until: travUntil, Time: at(6)}, 696, false, "standard"},
		{"the same traversal again: free", Event{Kind: Attack, Once: trav, Until: travUntil, Time: at(7)}, 696, false, "standard"},
		{"rate limit hit", Event{Kind: RateLimited, Once: "api/limit/a", Until: at(68), Time: at(8)}, 676, false, "standard"},
		{"quiet hour just ended", Event{Kind: Allowed, Time: at(68)}, 677, false, "standard"},
		{"two more quiet hours: +20", Event{Kind: Allowed, Time: at(188)}, 698, false, "standard"},
		{"tool error: neutral", Event{Kind: Neutral, Time: at(189)}, 698, false, "standard"},
		{"SSRF to a disguised loopback", Event{Kind: Attack, Once: "attack/ssrf/api_call/http://2130706433/", Until: at(250), Time: at(190)}, 598, false, "standard"},
		{"destructive SQL", Event{Kind: Attack, Once: "attack/destructive/database_query/users", Until: at(251), Time: at(191)}, 498, false, "probationary"},
		{"credential failure", Event{Kind: CredentialFailure, Time: at(192)}, 398, false, "probationary"},
		{"a secret sent out in params: revoked", Event{Kind: Attack, Once: "attack/secret/api_call/x", Until: at(253), Time: at(193)}, 298, true, "untrusted"},
		{"refused while revoked: no spiral", Event{Kind: PolicyBlock, Severity: "critical", Time: at(194)}, 298, true, "untrusted"},
		{"allowed while revoked: no change", Event{Kind: Allowed, Time: at(195)}, 298, true, "untrusted"},
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

// TestNoReserve: above the baseline, allowed calls add at most
// DailyGainAboveInitial a day; below it, every allowed call counts.
func TestNoReserve(t *testing.T) {
	m := testModel()
	s := m.Fresh()
	for i := 0; i < 500; i++ {
		s = m.Apply(s, Event{Kind: Allowed, Time: at(i)})
	}
	if s.Score != 810 {
		t.Fatalf("500 allowed calls in a day took 800 to %d, want 810", s.Score)
	}
	s = m.Apply(s, Event{Kind: Allowed, Time: at(60 * 24)}) // the next day
	if s.Score != 811 {
		t.Fatalf("next day: %d, want 811", s.Score)
	}
	low := m.Apply(m.Fresh(), Event{Kind: Attack, Time: at(0)}) // 700
	for i := 1; i <= 50; i++ {
		low = m.Apply(low, Event{Kind: Allowed, Time: at(i)})
	}
	if low.Score != 750 {
		t.Fatalf("50 allowed calls below the baseline took 700 to %d, want 750", low.Score)
	}
	m.DailyGainAboveInitial = 0
	if got := m.Apply(m.Fresh(), Event{Kind: Allowed, Time: at(0)}).Score; got != 800 {
		t.Fatalf("with no daily gain: %d, want 800", got)
	}
}

// TestRepeatsCostOncePerWindow: the same refusal is charged once per
// window, again after it; distinct refusals each cost; past maxWindows
// keys, refusals are charged every time, never free.
func TestRepeatsCostOncePerWindow(t *testing.T) {
	m := testModel()
	s := m.Fresh()
	for i := 0; i < 10; i++ {
		s = m.Apply(s, Event{Kind: Mistake, Once: "k", Until: at(60), Time: at(i)})
	}
	if s.Score != 795 {
		t.Fatalf("10 identical mistakes in a window: %d, want 795", s.Score)
	}
	s = m.Apply(s, Event{Kind: Mistake, Once: "k", Until: at(121), Time: at(61)})
	if s.Score != 790 {
		t.Fatalf("after the window: %d, want 790", s.Score)
	}
	m.RevokeBelow = 0
	s = m.Fresh()
	s.Score = 1000
	for i := 0; i < maxWindows+10; i++ {
		s = m.Apply(s, Event{Kind: Mistake, Once: fmt.Sprint("key", i), Until: at(60), Time: at(0)})
	}
	if want := 1000 - 5*(maxWindows+10); s.Score != max(want, 0) || len(s.Windows) != maxWindows {
		t.Fatalf("distinct mistakes: score %d with %d windows, want %d and %d", s.Score, len(s.Windows), max(want, 0), maxWindows)
	}
	again := m.Apply(s, Event{Kind: Mistake, Once: "key3", Until: at(60), Time: at(1)})
	if again.Score != s.Score {
		t.Fatalf("a remembered key was charged again")
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
