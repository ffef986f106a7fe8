package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// goldenEntry exercises every member.
func goldenEntry() Entry {
	return Entry{
		Seq:        42,
		Timestamp:  time.Date(2026, 3, 14, 16, 9, 26, 535897999, time.FixedZone("CET", 3600)),
		Agent:      testAgent,
		Action:     ActionToolInvocation,
		Tool:       "filesystem.read_file",
		Params:     json.RawMessage(`{"path": "/etc/<x>&y", "opts": {"b": 2, "a": [1.50, 1e3, -0]}}`),
		Result:     ResultBlocked,
		Reason:     "path \"outside\" roots\n\x1f",
		Rules:      []string{"fs-roots", "deny-secrets"},
		TrustScore: ptr(-3),
		DurationUS: 1234,
		Client:     "claude-desktop",
		Upstream:   "fs-server",
		Enforced:   ptr(false),
		Details:    json.RawMessage(`{"\u00e9": "\u00e9", "z": null}`),
	}
}

const goldenEncoding = `{"v":1,"seq":42,"timestamp":"2026-03-14T15:09:26.535897Z",` +
	`"agent":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","action":"tool_invocation",` +
	`"tool":"filesystem.read_file","params":{"opts":{"a":[1.50,1e3,-0],"b":2},"path":"/etc/<x>&y"},` +
	`"result":"blocked","reason":"path \"outside\" roots\n\u001f","rules":["fs-roots","deny-secrets"],` +
	`"trust_score":-3,"duration_us":1234,"client":"claude-desktop","upstream":"fs-server","enforced":false,` +
	`"details":{"z":null,"é":"é"}}`

// minimalEntry is a lifecycle event: no result, no tool.
const minimalEncoding = `{"v":1,"seq":0,"timestamp":"2026-01-01T00:00:00.000000Z","agent":"did:example:1","action":"key_rotated","details":{"new_key":"abc"}}`

func TestMarshalGolden(t *testing.T) {
	got := string(mustMarshal(t, goldenEntry()))
	if got != goldenEncoding {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, goldenEncoding)
	}
	min := Entry{
		Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Agent:     "did:example:1",
		Action:    ActionKeyRotated,
		Details:   json.RawMessage(`{ "new_key" : "abc" }`),
	}
	if got := string(mustMarshal(t, min)); got != minimalEncoding {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, minimalEncoding)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, b := range []string{goldenEncoding, minimalEncoding} {
		e, err := Unmarshal([]byte(b))
		if err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		again := mustMarshal(t, e)
		if string(again) != b {
			t.Fatalf("re-encoding differs:\n got %s\nwant %s", again, b)
		}
	}
	// Decoded values are what was encoded (modulo the documented
	// normalisation of time and free-form JSON).
	want := goldenEntry()
	got, err := Unmarshal([]byte(goldenEncoding))
	if err != nil {
		t.Fatal(err)
	}
	want.Timestamp = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	want.Params = json.RawMessage(`{"opts":{"a":[1.50,1e3,-0],"b":2},"path":"/etc/<x>&y"}`)
	want.Details = json.RawMessage(`{"z":null,"é":"é"}`)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Unmarshal(Marshal(e)):\n got %+v\nwant %+v", got, want)
	}
	// Every sample entry round-trips.
	for seq := range uint64(50) {
		b := mustMarshal(t, sampleEntry(seq))
		e, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("seq %d: %v\n%s", seq, err, b)
		}
		if e.Seq != seq || !bytes.Equal(mustMarshal(t, e), b) {
			t.Fatalf("seq %d does not round-trip", seq)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	edit := func(base, old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("test bug: %q not in %s", old, base)
		}
		return strings.Replace(base, old, new, 1)
	}
	G, M := goldenEncoding, minimalEncoding
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"reordered members", edit(G, `"v":1,"seq":42`, `"seq":42,"v":1`), ErrNonCanonical},
		{"reordered optional members", edit(G, `"client":"claude-desktop","upstream":"fs-server"`, `"upstream":"fs-server","client":"claude-desktop"`), ErrNonCanonical},
		{"space after colon", edit(G, `"seq":42`, `"seq": 42`), ErrNonCanonical},
		{"space after comma", edit(G, `42,"timestamp"`, `42, "timestamp"`), ErrNonCanonical},
		{"trailing newline", G + "\n", ErrNonCanonical},
		{"leading space", " " + G, ErrNonCanonical},
		{"pretty printed", strings.ReplaceAll(M, `,"`, ",\n  \""), ErrNonCanonical},
		{"unknown member", edit(G, `"enforced":false`, `"enforced":false,"extra":1`), ErrInvalidEntry},
		{"unknown member in params_sha256", edit(M, `"details"`, `"params_sha256":{"sha256":"`+strings.Repeat("a", 64)+`","bytes":1,"x":0},"details"`), ErrInvalidEntry},
		{"version 2", edit(G, `"v":1`, `"v":2`), ErrUnsupportedVersion},
		{"version 0", edit(G, `"v":1`, `"v":0`), ErrUnsupportedVersion},
		{"version as string", edit(G, `"v":1`, `"v":"1"`), ErrUnsupportedVersion},
		{"version 1.0", edit(G, `"v":1`, `"v":1.0`), ErrUnsupportedVersion},
		{"no version", edit(G, `"v":1,`, ``), ErrUnsupportedVersion},
		{"unneeded escape", edit(G, `"filesystem.read_file"`, `"filesystem\u002eread_file"`), ErrNonCanonical},
		{"escaped slash", edit(G, `"/etc/`, `"\/etc/`), ErrNonCanonical},
		{"HTML escaping", edit(G, `<x>&y`, `\u003cx\u003e\u0026y`), ErrNonCanonical},
		{"upper-case hex escape", edit(G, `\u001f`, `\u001F`), ErrNonCanonical},
		{"control character unescaped", edit(G, `\u001f`, "\x1f"), ErrInvalidEntry},
		{"short escape spelled out", edit(G, `roots\n`, `roots\u000a`), ErrNonCanonical},
		{"escaped non-ASCII", edit(G, `"é":"é"`, `"é":"\u00e9"`), ErrNonCanonical},
		{"params keys unsorted", edit(G, `{"opts":{"a":[1.50,1e3,-0],"b":2},"path":"/etc/<x>&y"}`, `{"path":"/etc/<x>&y","opts":{"a":[1.50,1e3,-0],"b":2}}`), ErrNonCanonical},
		{"params whitespace", edit(G, `"b":2}`, `"b":2 }`), ErrNonCanonical},
		{"details keys unsorted", edit(G, `{"z":null,"é":"é"}`, `{"é":"é","z":null}`), ErrNonCanonical},
		{"duplicate member", edit(G, `"enforced":false`, `"enforced":false,"reason":"other"`), ErrInvalidEntry},
		{"duplicate key in params", edit(G, `"b":2}`, `"b":2,"b":2}`), ErrInvalidEntry},
		{"member name case", edit(G, `"seq":42`, `"SEQ":42`), ErrInvalidEntry},
		{"empty tool written out", edit(M, `"action":"key_rotated"`, `"action":"key_rotated","tool":""`), ErrNonCanonical},
		{"empty rules written out", edit(M, `"action":"key_rotated"`, `"action":"key_rotated","rules":[]`), ErrNonCanonical},
		{"null params written out", edit(M, `"action":"key_rotated"`, `"action":"key_rotated","params":null`), ErrNonCanonical},
		{"zero duration written out", edit(M, `"details"`, `"duration_us":0,"details"`), ErrNonCanonical},
		{"null enforced", edit(M, `"details"`, `"enforced":null,"details"`), ErrInvalidEntry},
		{"null tool", edit(M, `"details"`, `"tool":null,"details"`), ErrInvalidEntry},
		{"invalid UTF-8", edit(G, `claude-desktop`, "claude-\xffdesktop"), ErrNonCanonical},
		{"trailing data", G + "{}", ErrInvalidEntry},
		{"timestamp with offset", edit(G, `.535897Z`, `.535897+00:00`), ErrInvalidEntry},
		{"timestamp without fraction", edit(G, `26.535897Z`, `26Z`), ErrInvalidEntry},
		{"timestamp with nanoseconds", edit(G, `.535897Z`, `.535897000Z`), ErrInvalidEntry},
		{"timestamp lower-case z", edit(G, `.535897Z`, `.535897z`), ErrInvalidEntry},
		{"zero timestamp", edit(M, `2026-01-01T00:00:00.000000Z`, `0001-01-01T00:00:00.000000Z`), ErrInvalidEntry},
		{"no timestamp", edit(M, `"timestamp":"2026-01-01T00:00:00.000000Z",`, ``), ErrInvalidEntry},
		{"no seq", edit(M, `"seq":0,`, ``), ErrInvalidEntry},
		{"empty agent", edit(M, `"did:example:1"`, `""`), ErrInvalidEntry},
		{"no action", edit(M, `"action":"key_rotated",`, ``), ErrInvalidEntry},
		{"bad action", edit(M, `key_rotated`, `Key Rotated`), ErrInvalidEntry},
		{"unknown result", edit(G, `"blocked"`, `"denied"`), ErrInvalidEntry},
		{"seq leading zero", edit(G, `"seq":42`, `"seq":042`), ErrInvalidEntry},
		{"seq fraction", edit(G, `"seq":42`, `"seq":42.0`), ErrInvalidEntry},
		{"seq negative", edit(G, `"seq":42`, `"seq":-42`), ErrInvalidEntry},
		{"seq beyond int64", edit(G, `"seq":42`, `"seq":9223372036854775808`), ErrInvalidEntry},
		{"seq beyond tree", edit(G, `"seq":42`, `"seq":4611686018427387903`), ErrInvalidEntry},
		{"negative duration", edit(G, `"duration_us":1234`, `"duration_us":-1234`), ErrInvalidEntry},
		{"trust score fraction", edit(G, `"trust_score":-3`, `"trust_score":-3.0`), ErrInvalidEntry},
		{"trust score minus zero", edit(G, `"trust_score":-3`, `"trust_score":-0`), ErrNonCanonical},
		{"params and digest", edit(G, `"result"`, `"params_sha256":{"sha256":"`+strings.Repeat("a", 64)+`","bytes":1},"result"`), ErrInvalidEntry},
		{"digest upper-case hex", edit(M, `"details"`, `"params_sha256":{"sha256":"`+strings.Repeat("A", 64)+`","bytes":1},"details"`), ErrInvalidEntry},
		{"digest short", edit(M, `"details"`, `"params_sha256":{"sha256":"abc","bytes":1},"details"`), ErrInvalidEntry},
		{"digest members reordered", edit(M, `"details"`, `"params_sha256":{"bytes":1,"sha256":"`+strings.Repeat("a", 64)+`"},"details"`), ErrNonCanonical},
		{"rules not strings", edit(G, `["fs-roots","deny-secrets"]`, `[1,2]`), ErrInvalidEntry},
		{"too many members", edit(G, `"enforced":false`, `"enforced":false,"x1":0,"x2":0,"x3":0`), ErrInvalidEntry},
		{"empty input", "", ErrInvalidEntry},
		{"array", "[]", ErrInvalidEntry},
		{"truncated", G[:len(G)-1], ErrInvalidEntry},
		{"null", "null", ErrInvalidEntry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == G || tc.in == M {
				t.Fatal("test bug: input is unchanged")
			}
			_, err := Unmarshal([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted %s", tc.in)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %q, want one wrapping %q", err, tc.want)
			}
		})
	}
}

func TestParamsCanonicalised(t *testing.T) {
	a := sampleEntry(7)
	b := a
	a.Params = json.RawMessage(`{"b":1,"a":{"d":[1, 2],"c":"x<y"}}`)
	b.Params = json.RawMessage("\n{ \"a\" : {\"c\":\"x\\u003cy\",\"d\":[1,2]} ,\t\"b\" : 1 }\n")
	ea, eb := mustMarshal(t, a), mustMarshal(t, b)
	if !bytes.Equal(ea, eb) {
		t.Fatalf("same params, different encodings:\n%s\n%s", ea, eb)
	}
	if !bytes.Contains(ea, []byte(`"params":{"a":{"c":"x<y","d":[1,2]},"b":1}`)) {
		t.Fatalf("params not in canonical form: %s", ea)
	}
	// Numbers are kept exactly as written.
	a.Params = json.RawMessage(`{"n":[1.0,1e3,1E3,-0,0.10,12345678901234567890123]}`)
	if got := mustMarshal(t, a); !bytes.Contains(got, []byte(`[1.0,1e3,1E3,-0,0.10,12345678901234567890123]`)) {
		t.Fatalf("numbers rewritten: %s", got)
	}
	// null params are the same as none.
	a.Params = json.RawMessage(` null `)
	a.ParamsDigest = nil
	if got := mustMarshal(t, a); bytes.Contains(got, []byte(`"params"`)) {
		t.Fatalf("null params written: %s", got)
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `[1 2]`, `{} {}`, `01`, `"\x01"`, `nul`, `{1:2}`,
		strings.Repeat("[", 129) + strings.Repeat("]", 129)} {
		a.Params = json.RawMessage(bad)
		if _, err := Marshal(a); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("params %.40q: got %v, want ErrInvalidEntry", bad, err)
		}
	}
	a.Params = json.RawMessage(strings.Repeat("[", 128) + strings.Repeat("]", 128))
	if _, err := Marshal(a); err != nil {
		t.Errorf("params nested 128 deep rejected: %v", err)
	}
}

func TestCapParams(t *testing.T) {
	small := json.RawMessage(`{ "b": 1, "a": 2 }`)
	p, d, err := CapParams(small, 0)
	if err != nil || d != nil || string(p) != `{"a":2,"b":1}` {
		t.Fatalf("CapParams(small) = %s, %+v, %v", p, d, err)
	}
	if p, d, err := CapParams(nil, 0); p != nil || d != nil || err != nil {
		t.Fatalf("CapParams(nil) = %s, %+v, %v", p, d, err)
	}
	if _, _, err := CapParams(json.RawMessage(`{`), 0); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("CapParams(invalid) error = %v", err)
	}

	// Default cap: canonical form of exactly 16 KiB is kept, one byte more is hashed.
	body := func(n int) json.RawMessage { // canonical length n
		return json.RawMessage(`{"x":"` + strings.Repeat("a", n-8) + `"}`)
	}
	if p, d, _ := CapParams(body(DefaultParamsCap), 0); d != nil || len(p) != DefaultParamsCap {
		t.Fatalf("params of exactly %d bytes capped", DefaultParamsCap)
	}
	big := body(DefaultParamsCap + 1)
	p, d, err = CapParams(big, 0)
	if err != nil || p != nil || d == nil {
		t.Fatalf("CapParams(big) = %d bytes, %+v, %v", len(p), d, err)
	}
	sum := sha256.Sum256(big)
	if d.SHA256 != hex.EncodeToString(sum[:]) || d.Bytes != DefaultParamsCap+1 {
		t.Fatalf("digest %+v, want sha256 %x bytes %d", d, sum, DefaultParamsCap+1)
	}
	// The digest is of the canonical form: key order and whitespace do not matter.
	_, d1, _ := CapParams(json.RawMessage(`{"a":"`+strings.Repeat("z", 100)+`","b":1}`), 50)
	_, d2, _ := CapParams(json.RawMessage(`{ "b" : 1 , "a" : "`+strings.Repeat("z", 100)+`" }`), 50)
	if d1 == nil || d2 == nil || *d1 != *d2 {
		t.Fatalf("digests differ: %+v %+v", d1, d2)
	}

	// An entry carrying a digest encodes it and round-trips.
	e := sampleEntry(0)
	e.Params, e.ParamsDigest = nil, d
	b := mustMarshal(t, e)
	want := `"params_sha256":{"sha256":"` + d.SHA256 + `","bytes":` + "16385" + `}`
	if !bytes.Contains(b, []byte(want)) {
		t.Fatalf("encoding lacks %s: %s", want, b)
	}
	back, err := Unmarshal(b)
	if err != nil || back.ParamsDigest == nil || *back.ParamsDigest != *d || back.Params != nil {
		t.Fatalf("Unmarshal: %+v, %v", back.ParamsDigest, err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(e *Entry){
		"seq beyond int64":  func(e *Entry) { e.Seq = math.MaxInt64 + 1 },
		"seq MaxTreeSize":   func(e *Entry) { e.Seq = uint64(MaxTreeSize) },
		"zero timestamp":    func(e *Entry) { e.Timestamp = time.Time{} },
		"year 10000":        func(e *Entry) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"empty agent":       func(e *Entry) { e.Agent = "" },
		"empty action":      func(e *Entry) { e.Action = "" },
		"action upper case": func(e *Entry) { e.Action = "Tool_Invocation" },
		"action digit":      func(e *Entry) { e.Action = "1tool" },
		"bad result":        func(e *Entry) { e.Result = "Allowed" },
		"params and digest": func(e *Entry) { e.ParamsDigest = &ParamsDigest{SHA256: strings.Repeat("0", 64), Bytes: 1} },
		"digest not hex": func(e *Entry) {
			e.Params = nil
			e.ParamsDigest = &ParamsDigest{SHA256: strings.Repeat("g", 64), Bytes: 1}
		},
		"digest negative bytes": func(e *Entry) {
			e.Params = nil
			e.ParamsDigest = &ParamsDigest{SHA256: strings.Repeat("0", 64), Bytes: -1}
		},
		"negative duration": func(e *Entry) { e.DurationUS = -1 },
		"invalid details":   func(e *Entry) { e.Details = json.RawMessage(`{"a"}`) },
	}
	for name, mutate := range cases {
		e := sampleEntry(0)
		mutate(&e)
		if _, err := Marshal(e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Marshal error = %v, want ErrInvalidEntry", name, err)
		}
	}
	for _, r := range []Result{"", ResultAllowed, ResultBlocked, ResultRedacted, ResultError} {
		e := sampleEntry(0)
		e.Result = r
		if _, err := Marshal(e); err != nil {
			t.Errorf("result %q rejected: %v", r, err)
		}
	}
}

func TestInvalidUTF8Normalised(t *testing.T) {
	e := sampleEntry(0)
	e.Reason = "bad \xff byte"
	b := mustMarshal(t, e)
	if !bytes.Contains(b, []byte(`"reason":"bad `+"\uFFFD"+` byte"`)) {
		t.Fatalf("invalid UTF-8 not replaced: %q", b)
	}
	back, err := Unmarshal(b)
	if err != nil || back.Reason != "bad \uFFFD byte" || !bytes.Equal(mustMarshal(t, back), b) {
		t.Fatalf("round trip: %q, %v", back.Reason, err)
	}
}

func TestTimestamps(t *testing.T) {
	ts := time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -5*3600))
	if got := FormatTimestamp(ts); got != "2027-01-01T04:59:59.999999Z" {
		t.Fatalf("FormatTimestamp = %s (must convert to UTC and truncate, not round)", got)
	}
	if got := FormatTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); got != "2026-01-02T03:04:05.000000Z" {
		t.Fatalf("FormatTimestamp = %s (must keep six fractional digits)", got)
	}
	p, err := ParseTimestamp("2026-01-02T03:04:05.000007Z")
	if err != nil || !p.Equal(time.Date(2026, 1, 2, 3, 4, 5, 7000, time.UTC)) || p.Location() != time.UTC {
		t.Fatalf("ParseTimestamp = %v, %v", p, err)
	}
	for _, bad := range []string{
		"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.0000070Z", "2026-01-02T03:04:05.000007+00:00",
		"2026-01-02 03:04:05.000007Z", "2026-1-02T03:04:05.000007Z", "2026-02-30T03:04:05.000007Z",
		"2026-01-02T24:00:00.000000Z", " 2026-01-02T03:04:05.000007Z", "",
	} {
		if _, err := ParseTimestamp(bad); err == nil {
			t.Errorf("ParseTimestamp(%q) accepted", bad)
		}
	}
}

func TestUnmarshalHostileSizeIsCheap(t *testing.T) {
	// 200k distinct members: must fail fast (the duplicate check is bounded).
	var sb strings.Builder
	sb.WriteString(`{"v":1`)
	for i := range 200000 {
		fmt.Fprintf(&sb, `,"x%d":0`, i)
	}
	sb.WriteString(`}`)
	b := []byte(sb.String())
	start := time.Now()
	if _, err := Unmarshal(b); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("error %v, want ErrInvalidEntry", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("rejecting a 1.2 MB entry took %v", d)
	}
}

func TestUnmarshalDoesNotAliasInput(t *testing.T) {
	e := sampleEntry(0)
	e.Params = json.RawMessage(`12345`)
	e.Details = json.RawMessage(`"text"`)
	b := mustMarshal(t, e)
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if string(got.Params) != `12345` || string(got.Details) != `"text"` {
		t.Fatalf("decoded entry changed with its input: params %s details %s", got.Params, got.Details)
	}
}

// TestIntentMember: an outcome names its write-ahead intent in "intent",
// between "enforced" and "details"; an intent that does not precede the
// entry, or sits elsewhere, is refused.
func TestIntentMember(t *testing.T) {
	intent, enforced := uint64(4), true
	e := Entry{Seq: 5, Timestamp: testEpoch, Agent: testAgent, Action: ActionToolInvocation, Tool: "filesystem_write",
		Result: ResultAllowed, Enforced: &enforced, Intent: &intent, Details: json.RawMessage(`{"access":"write"}`)}
	b := mustMarshal(t, e)
	if !bytes.Contains(b, []byte(`"enforced":true,"intent":4,"details":{"access":"write"}}`)) {
		t.Fatalf("encoding = %s", b)
	}
	got, err := Unmarshal(b)
	if err != nil || got.Intent == nil || *got.Intent != 4 {
		t.Fatalf("Unmarshal = %+v, %v", got, err)
	}
	for _, bad := range []string{
		strings.Replace(string(b), `"intent":4`, `"intent":5`, 1),
		strings.Replace(string(b), `"intent":4`, `"intent":-1`, 1),
		strings.Replace(string(b), `"intent":4`, `"intent":"4"`, 1),
		strings.Replace(strings.Replace(string(b), `,"intent":4`, ``, 1), `{"v":1,`, `{"v":1,"intent":4,`, 1),
	} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestCallerMember: who called is recorded between "client" and
// "upstream", covered by the leaf hash like every member; reordered,
// empty or unknown caller members are refused.
func TestCallerMember(t *testing.T) {
	e := Entry{Seq: 5, Timestamp: testEpoch, Agent: testAgent, Action: ActionToolInvocation, Tool: "echo",
		Result: ResultAllowed, Client: "claude", Upstream: "everything",
		Caller: &Caller{ID: "oauth:https://as.example#alice", Kind: "oauth", ClientID: "alice-app", Scopes: []string{"mcp:read", "mcp:tools"}}}
	b := mustMarshal(t, e)
	want := `"client":"claude","caller":{"id":"oauth:https://as.example#alice","kind":"oauth","client_id":"alice-app","scopes":["mcp:read","mcp:tools"]},"upstream":"everything"`
	if !bytes.Contains(b, []byte(want)) {
		t.Fatalf("encoding = %s\nwant it to contain %s", b, want)
	}
	got, err := Unmarshal(b)
	if err != nil || got.Caller == nil || got.Caller.ID != e.Caller.ID || got.Caller.ClientID != "alice-app" || len(got.Caller.Scopes) != 2 {
		t.Fatalf("Unmarshal = %+v, %v", got.Caller, err)
	}
	if LeafHash(b) == LeafHash(mustMarshal(t, Entry{Seq: 5, Timestamp: testEpoch, Agent: testAgent, Action: ActionToolInvocation, Tool: "echo",
		Result: ResultAllowed, Client: "claude", Upstream: "everything", Caller: &Caller{ID: "oauth:https://as.example#bob", Kind: "oauth"}})) {
		t.Fatal("two callers hash alike")
	}
	local := mustMarshal(t, Entry{Seq: 1, Timestamp: testEpoch, Agent: testAgent, Action: ActionToolInvocation, Caller: &Caller{ID: "local:root", Kind: "local"}})
	if !bytes.Contains(local, []byte(`"caller":{"id":"local:root","kind":"local"}}`)) {
		t.Fatalf("optional caller members not omitted: %s", local)
	}
	for _, bad := range []string{
		strings.Replace(string(b), `"kind":"oauth","client_id":"alice-app"`, `"client_id":"alice-app","kind":"oauth"`, 1),
		strings.Replace(string(b), `"id":"oauth:https://as.example#alice"`, `"id":""`, 1),
		strings.Replace(string(b), `,"client_id":"alice-app"`, `,"client_id":""`, 1),
		strings.Replace(string(b), `"scopes":["mcp:read","mcp:tools"]`, `"scopes":[]`, 1),
		strings.Replace(string(b), `"scopes":["mcp:read","mcp:tools"]`, `"scopes":["mcp:read",1]`, 1),
		strings.Replace(string(b), `"client_id":"alice-app"`, `"client_id":"alice-app","groups":["x"]`, 1),
		strings.Replace(string(local), `,"kind":"local"`, ``, 1),
		strings.Replace(string(local), `"caller":{"id":"local:root","kind":"local"}`, `"caller":"local:root"`, 1),
	} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, err := Marshal(Entry{Seq: 1, Timestamp: testEpoch, Agent: testAgent, Action: ActionToolInvocation, Caller: &Caller{Kind: "oauth"}}); err == nil {
		t.Error("Marshal accepted a caller without an id")
	}
}
