package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// EntryVersion is the format version written in every entry's "v" field.
const EntryVersion = 1

// DefaultParamsCap is the default size limit, in bytes of canonical JSON,
// above which [CapParams] replaces tool-call parameters by their digest.
const DefaultParamsCap = 16 << 10

// Action says what kind of event an entry records.
type Action string

// Actions written by agentmesh. Other values are valid as long as they match
// [a-z][a-z0-9_]*.
const (
	ActionToolInvocation        Action = "tool_invocation"
	ActionIdentityCreated       Action = "identity_created"
	ActionKeyRotated            Action = "key_rotated"
	ActionCredentialIssued      Action = "credential_issued"
	ActionPolicyLoaded          Action = "policy_loaded"
	ActionTrustChanged          Action = "trust_changed"
	ActionToolDefinitionChanged Action = "tool_definition_changed"
	ActionTrustReset            Action = "trust_reset"
	ActionToolApproved          Action = "tool_approved"
	ActionUpstreamRequest       Action = "upstream_request"
	// ActionToolIntent records, durably and before the tool runs, that a
	// call which can change the world was allowed and is about to run
	// (write-ahead); the call's tool_invocation entry names it in
	// "intent".
	ActionToolIntent Action = "tool_intent"
	// ActionAPIKeyCreated and ActionAPIKeyRevoked record an operator
	// creating or revoking a service caller's API key (pkg/apikey): the
	// key's public id and caller, never the key.
	ActionAPIKeyCreated Action = "api_key_created"
	ActionAPIKeyRevoked Action = "api_key_revoked"
)

// Result is the outcome of a governed tool call. Lifecycle events have none.
type Result string

// The only valid non-empty results.
const (
	ResultAllowed  Result = "allowed"
	ResultBlocked  Result = "blocked"
	ResultRedacted Result = "redacted"
	// ResultWithheld: a redact rule matched and the detectors found
	// nothing to remove, so the output was not passed at all.
	ResultWithheld Result = "withheld"
	ResultError    Result = "error"
)

// ParamsDigest stands in for tool-call parameters too large to log: the
// SHA-256 of their canonical JSON encoding (see [CanonicalJSON]) and that
// encoding's length.
type ParamsDigest struct {
	SHA256 string `json:"sha256"` // 64 lower-case hex digits
	Bytes  int64  `json:"bytes"`
}

// Entry is one record of the audit log.
//
// # Encoding
//
// [Marshal] writes an entry as a single JSON object with no insignificant
// whitespace and the members below in exactly this order. Members marked
// "omitted when empty" are left out when they hold their zero value (empty
// string, nil, 0, empty slice); the others are always present.
//
//	"v"             integer, always 1 (EntryVersion)
//	"seq"           integer ≥ 0, the entry's position in the log (leaf index),
//	                below MaxTreeSize
//	"timestamp"     string, UTC, exactly "YYYY-MM-DDThh:mm:ss.ffffffZ"
//	                (RFC 3339 with six fractional digits; see FormatTimestamp)
//	"agent"         string, the DID of the agent whose log this is; non-empty
//	"action"        string matching [a-z][a-z0-9_]*
//	"tool"          string, omitted when empty
//	"params"        any JSON value in canonical form, omitted when absent or null
//	"params_sha256" {"sha256":"<64 hex>","bytes":<int>}, omitted when nil;
//	                never together with "params"
//	"result"        "allowed" | "blocked" | "redacted" | "withheld" | "error",
//	                omitted when empty
//	"reason"        string, omitted when empty
//	"rules"         array of strings, omitted when empty
//	"trust_score"   integer, omitted when nil
//	"duration_us"   integer ≥ 0, omitted when 0
//	"client"        string, omitted when empty
//	"caller"        {"id":"<non-empty>","kind":"<kind>"[,"client_id":"…"]
//	                [,"scopes":["…",…]]}: who made the call (DESIGN.md,
//	                "Who calls"), members in this order, the optional ones
//	                omitted when empty; omitted when nil
//	"upstream"      string, omitted when empty
//	"enforced"      true | false, omitted when nil (false means shadow mode)
//	"intent"        integer, the seq of this call's tool_intent entry (always
//	                smaller than "seq"), omitted when nil
//	"details"       any JSON value in canonical form, omitted when absent or null
//
// Integers are written in decimal without sign (except a negative
// trust_score), leading zeros, fraction or exponent. Strings, including
// object keys, use the escaping described at [CanonicalJSON]. "params" and
// "details" are re-encoded by [CanonicalJSON]. Hence equal entries always
// encode to equal bytes, and [Unmarshal] accepts only those bytes.
type Entry struct {
	Seq          uint64
	Timestamp    time.Time
	Agent        string
	Action       Action
	Tool         string
	Params       json.RawMessage
	ParamsDigest *ParamsDigest // JSON "params_sha256"
	Result       Result
	Reason       string
	Rules        []string
	TrustScore   *int
	DurationUS   int64
	Client       string
	// Caller is who made the call (an authenticated HTTP principal, an API
	// key's caller, the local OS user); on trust entries (trust_changed,
	// trust_reset), whose score moved. Nil for entries written before
	// callers were recorded and for lifecycle events.
	Caller   *Caller
	Upstream string
	Enforced *bool
	// Intent is the seq of the call's write-ahead tool_intent entry.
	Intent  *uint64
	Details json.RawMessage
}

// Caller is the "caller" member of an entry: the caller's stable ID (the
// key of its trust state and rate limits), how it was authenticated, and
// for OAuth callers the client the token was issued to and the token's
// scopes.
type Caller struct {
	ID       string
	Kind     string
	ClientID string
	Scopes   []string
}

// Subject is whose trust state and rate-limit counters an entry's call
// charges (DESIGN.md, "Who calls"): the caller's ID for an authenticated
// HTTP caller, so one misbehaving caller is revoked and the others are
// not; the agent (the server's DID) for the local OS user over stdio and
// the anonymous caller of a server without authentication, the one
// principal such a server has, and for entries without a caller.
func (e *Entry) Subject() string {
	if c := e.Caller; c != nil && caller.Kind(c.Kind).OwnTrust() {
		return c.ID
	}
	return e.Agent
}

// Errors returned (wrapped) by [Marshal], [Unmarshal] and [Entry.Validate].
var (
	// ErrInvalidEntry: the entry violates a field rule, or the input is not
	// a JSON object of the entry's shape (syntax, types, unknown or
	// duplicate members, trailing data).
	ErrInvalidEntry = errors.New("invalid audit entry")
	// ErrUnsupportedVersion: the input's "v" is missing or not EntryVersion.
	ErrUnsupportedVersion = errors.New("unsupported audit entry version")
	// ErrNonCanonical: the input decodes, but is not the canonical encoding
	// of what it decodes to.
	ErrNonCanonical = errors.New("audit entry is not in canonical encoding")
)

const timestampLayout = "2006-01-02T15:04:05.000000Z"

// FormatTimestamp formats t as entries and checkpoints store times: converted
// to UTC, truncated (not rounded) to whole microseconds, and written as
// "YYYY-MM-DDThh:mm:ss.ffffffZ" with exactly six fractional digits, so that
// the strings sort in time order.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(timestampLayout)
}

// ParseTimestamp parses a string produced by [FormatTimestamp], and nothing
// else: other RFC 3339 spellings of the same instant are rejected.
func ParseTimestamp(s string) (time.Time, error) {
	t, ok := parseTimestamp(s)
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp %q is not of the form YYYY-MM-DDThh:mm:ss.ffffffZ (UTC, 6 fractional digits)", s)
	}
	return t, nil
}

// parseTimestamp reads the fixed-width form of timestampLayout digit by
// digit, with time.Parse's range checks (month, day of that month, hour,
// minute, second), without allocating; it accepts exactly the strings
// that time.Parse(timestampLayout, s) accepts and Format gives back
// unchanged (FuzzParseTimestamp checks the two agree).
func parseTimestamp(s string) (time.Time, bool) {
	if len(s) != len(timestampLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[26] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	micro, ok7 := num(20, 26)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, micro*1000, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}

// AppendTimestamp appends FormatTimestamp(t) to b, without allocating
// for years 0..9999.
func AppendTimestamp(b []byte, t time.Time) []byte {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return append(b, FormatTimestamp(t)...)
	}
	return appendTimestamp(b, t)
}

// appendTimestamp appends FormatTimestamp(t) for a time whose year is in
// 0..9999, without allocating.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	pad := func(b []byte, n, width int) []byte {
		var d [6]byte
		for i := width - 1; i >= 0; i-- {
			d[i] = byte('0' + n%10)
			n /= 10
		}
		return append(b, d[:width]...)
	}
	b = pad(b, year, 4)
	b = append(b, '-')
	b = pad(b, int(month), 2)
	b = append(b, '-')
	b = pad(b, day, 2)
	b = append(b, 'T')
	b = pad(b, hour, 2)
	b = append(b, ':')
	b = pad(b, minute, 2)
	b = append(b, ':')
	b = pad(b, sec, 2)
	b = append(b, '.')
	b = pad(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

func checkTime(t time.Time) error {
	if t.IsZero() {
		return errors.New("is zero")
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("year %d is outside 0001..9999", y)
	}
	return nil
}

func validAction(a Action) bool {
	if a == "" || a[0] < 'a' || a[0] > 'z' {
		return false
	}
	for i := 1; i < len(a); i++ {
		c := a[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks the field rules listed at [Entry]; it does not check that
// Params and Details are valid JSON ([Marshal] does).
func (e *Entry) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...))
	}
	if e.Seq >= uint64(MaxTreeSize) {
		return bad("seq %d exceeds the largest supported leaf index %d", e.Seq, MaxTreeSize-1)
	}
	if err := checkTime(e.Timestamp); err != nil {
		return bad("timestamp %s", err)
	}
	if e.Agent == "" {
		return bad("agent is empty")
	}
	if !validAction(e.Action) {
		return bad("action %q does not match [a-z][a-z0-9_]*", e.Action)
	}
	switch e.Result {
	case "", ResultAllowed, ResultBlocked, ResultRedacted, ResultWithheld, ResultError:
	default:
		return bad("result %q is not one of allowed, blocked, redacted, withheld, error", e.Result)
	}
	if e.Intent != nil && *e.Intent >= e.Seq {
		return bad("intent %d does not precede the entry's seq %d", *e.Intent, e.Seq)
	}
	if d := e.ParamsDigest; d != nil {
		if len(e.Params) != 0 {
			return bad("both params and params_sha256 are set")
		}
		if !validHexSHA256(d.SHA256) {
			return bad("params_sha256.sha256 %q is not 64 lower-case hex digits", d.SHA256)
		}
		if d.Bytes < 0 {
			return bad("params_sha256.bytes %d is negative", d.Bytes)
		}
	}
	if e.DurationUS < 0 {
		return bad("duration_us %d is negative", e.DurationUS)
	}
	if c := e.Caller; c != nil {
		if c.ID == "" {
			return bad("caller.id is empty")
		}
		if c.Kind == "" {
			return bad("caller.kind is empty")
		}
	}
	return nil
}

// canonicalOptional canonicalizes an optional free-form JSON value: absent
// and null both become nil.
func canonicalOptional(field string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	c, err := CanonicalJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid JSON: %v", ErrInvalidEntry, field, err)
	}
	if string(c) == "null" {
		return nil, nil
	}
	return c, nil
}

// Marshal returns the canonical encoding of e described at [Entry], after
// checking it with [Entry.Validate]. The timestamp is converted to UTC and
// truncated to microseconds, and string bytes that are not valid UTF-8 are
// replaced by U+FFFD, so Unmarshal(Marshal(e)) may differ from e in exactly
// those ways (and in a null Params or Details becoming nil).
func Marshal(e Entry) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	params, err := canonicalOptional("params", e.Params)
	if err != nil {
		return nil, err
	}
	if params != nil && e.ParamsDigest != nil {
		return nil, fmt.Errorf("%w: both params and params_sha256 are set", ErrInvalidEntry)
	}
	details, err := canonicalOptional("details", e.Details)
	if err != nil {
		return nil, err
	}
	return appendEntry(nil, &e, params, details), nil
}

// appendEntry appends the encoding of a validated entry whose params and
// details are already canonical (nil when absent).
func appendEntry(b []byte, e *Entry, params, details []byte) []byte {
	if b == nil {
		b = make([]byte, 0, 256+len(params)+len(details))
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, EntryVersion, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"timestamp":"`...)
	b = appendTimestamp(b, e.Timestamp) // validated: year 1..9999, nothing to escape
	b = append(b, '"')
	b = append(b, `,"agent":`...)
	b = appendString(b, e.Agent)
	b = append(b, `,"action":`...)
	b = appendString(b, string(e.Action))
	b = appendOptString(b, "tool", e.Tool)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	if d := e.ParamsDigest; d != nil {
		b = append(b, `,"params_sha256":{"sha256":`...)
		b = appendString(b, d.SHA256)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, d.Bytes, 10)
		b = append(b, '}')
	}
	b = appendOptString(b, "result", string(e.Result))
	b = appendOptString(b, "reason", e.Reason)
	if len(e.Rules) > 0 {
		b = append(b, `,"rules":[`...)
		for i, r := range e.Rules {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	if e.TrustScore != nil {
		b = append(b, `,"trust_score":`...)
		b = strconv.AppendInt(b, int64(*e.TrustScore), 10)
	}
	if e.DurationUS != 0 {
		b = append(b, `,"duration_us":`...)
		b = strconv.AppendInt(b, e.DurationUS, 10)
	}
	b = appendOptString(b, "client", e.Client)
	if c := e.Caller; c != nil {
		b = append(b, `,"caller":{"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"kind":`...)
		b = appendString(b, c.Kind)
		b = appendOptString(b, "client_id", c.ClientID)
		if len(c.Scopes) > 0 {
			b = append(b, `,"scopes":[`...)
			for i, sc := range c.Scopes {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, sc)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = appendOptString(b, "upstream", e.Upstream)
	if e.Enforced != nil {
		b = append(b, `,"enforced":`...)
		b = strconv.AppendBool(b, *e.Enforced)
	}
	if e.Intent != nil {
		b = append(b, `,"intent":`...)
		b = strconv.AppendUint(b, *e.Intent, 10)
	}
	if details != nil {
		b = append(b, `,"details":`...)
		b = append(b, details...)
	}
	return append(b, '}')
}

func appendOptString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// jsonMember is one member of a JSON object as parsed by objectMembers.
type jsonMember struct {
	key  string
	kind byte   // '"' string, '0' number, or the first byte of raw
	str  string // the value of a string
	raw  []byte // a number's literal, or the canonical form of any other value
}

// memberName returns the constant string for a known member name, so that
// keys do not keep the whole input alive.
func memberName(k string) string {
	switch k {
	case "v":
		return "v"
	case "seq":
		return "seq"
	case "timestamp":
		return "timestamp"
	case "agent":
		return "agent"
	case "action":
		return "action"
	case "tool":
		return "tool"
	case "params":
		return "params"
	case "params_sha256":
		return "params_sha256"
	case "result":
		return "result"
	case "reason":
		return "reason"
	case "rules":
		return "rules"
	case "trust_score":
		return "trust_score"
	case "duration_us":
		return "duration_us"
	case "client":
		return "client"
	case "caller":
		return "caller"
	case "id":
		return "id"
	case "kind":
		return "kind"
	case "client_id":
		return "client_id"
	case "scopes":
		return "scopes"
	case "upstream":
		return "upstream"
	case "enforced":
		return "enforced"
	case "intent":
		return "intent"
	case "details":
		return "details"
	case "sha256":
		return "sha256"
	case "bytes":
		return "bytes"
	}
	return k
}

// entryMembers is the number of members an entry can have.
const entryMembers = 19

// objectMembers parses a JSON object into its members (appended to
// ms[:0]), in input order,
// rejecting duplicate keys and objects of more than max members (which keeps
// the duplicate check cheap). Each member value may nest maxJSONDepth deep.
func objectMembers(b []byte, max int, ms []jsonMember) ([]jsonMember, error) {
	// One copy of the input as a string: the values of strings without
	// escapes are substrings of it, not an allocation each.
	p := jsonParser{s: b, src: string(b)}
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	ms = ms[:0]
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return ms, p.end()
	}
	for {
		p.skipWS()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errorf("expected a string member name")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		key = memberName(key)
		for _, m := range ms {
			if m.key == key {
				return nil, fmt.Errorf("duplicate member %q", key)
			}
		}
		if len(ms) == max {
			return nil, fmt.Errorf("more than %d members", max)
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		p.skipWS()
		m := jsonMember{key: key}
		switch {
		case p.i < len(p.s) && p.s[p.i] == '"':
			m.kind = '"'
			if m.str, err = p.str(); err != nil {
				return nil, err
			}
		case p.i < len(p.s) && (p.s[p.i] == '-' || '0' <= p.s[p.i] && p.s[p.i] <= '9'):
			m.kind = '0'
			if m.raw, err = p.number(); err != nil {
				return nil, err
			}
		default:
			p.depth = 0
			if m.raw, err = p.value(make([]byte, 0, len(p.s)-p.i)); err != nil {
				return nil, err
			}
			m.kind = m.raw[0]
		}
		ms = append(ms, m)
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in object")
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] == '}' {
			p.i++
			return ms, p.end()
		}
		return nil, p.errorf("found %q in object, expected ',' or '}'", p.s[p.i])
	}
}

func kindName(kind byte) string {
	switch kind {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	default:
		return "a boolean"
	}
}

func (m *jsonMember) wantString() (string, error) {
	if m.kind != '"' {
		return "", fmt.Errorf("%q is %s, want a string", m.key, kindName(m.kind))
	}
	return m.str, nil
}

func (m *jsonMember) wantInt(bits int) (int64, error) {
	if m.kind != '0' {
		return 0, fmt.Errorf("%q is %s, want an integer", m.key, kindName(m.kind))
	}
	n, err := strconv.ParseInt(string(m.raw), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is %s, want an integer that fits in %d bits", m.key, m.raw, bits)
	}
	return n, nil
}

// Unmarshal decodes an entry and checks that b is exactly its canonical
// encoding (see [Entry]). It fails, wrapping [ErrUnsupportedVersion], when
// "v" is missing or not 1; wrapping [ErrInvalidEntry] when b is not a JSON
// object of the entry's shape (bad syntax or types, unknown or duplicate
// members, trailing data) or breaks a field rule; and wrapping
// [ErrNonCanonical] when b decodes but is encoded differently from what
// [Marshal] would produce (member order, whitespace, escaping, empty optional
// members written out, ...). A verifier can therefore rely on every byte of
// an accepted entry being covered by its leaf hash.
func Unmarshal(b []byte) (Entry, error) {
	var buf [entryMembers]jsonMember // on the stack: members do not outlive Unmarshal
	ms, err := objectMembers(b, entryMembers, buf[:0])
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	version := -1
	for i := range ms {
		if ms[i].key == "v" {
			version = i
		}
	}
	if version < 0 {
		return Entry{}, fmt.Errorf("%w: no \"v\" member", ErrUnsupportedVersion)
	}
	if v := ms[version]; v.kind != '0' || string(v.raw) != strconv.Itoa(EntryVersion) {
		shown := string(v.raw)
		if v.kind == '"' {
			shown = strconv.Quote(v.str)
		}
		return Entry{}, fmt.Errorf("%w: \"v\" is %s, this build reads version %d", ErrUnsupportedVersion, shown, EntryVersion)
	}

	var e Entry
	var params, details []byte
	var haveSeq, haveTime bool
	for i := range ms {
		if err := decodeMember(&e, &ms[i], &params, &details, &haveSeq, &haveTime); err != nil {
			return Entry{}, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
		}
	}
	if !haveSeq {
		return Entry{}, fmt.Errorf("%w: no \"seq\" member", ErrInvalidEntry)
	}
	if !haveTime {
		return Entry{}, fmt.Errorf("%w: no \"timestamp\" member", ErrInvalidEntry)
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	// A null params or details is not written by Marshal, so passing nil
	// makes such input fail the comparison below.
	e.Params, e.Details = params, details
	if string(params) == "null" {
		params = nil
	}
	if string(details) == "null" {
		details = nil
	}
	if e.ParamsDigest != nil && params != nil {
		return Entry{}, fmt.Errorf("%w: both params and params_sha256 are set", ErrInvalidEntry)
	}
	canon := appendEntry(make([]byte, 0, len(b)), &e, params, details)
	if !bytes.Equal(canon, b) {
		return Entry{}, firstDifference(b, canon)
	}
	return e, nil
}

func decodeMember(e *Entry, m *jsonMember, params, details *[]byte, haveSeq, haveTime *bool) error {
	var err error
	switch m.key {
	case "v":
	case "seq":
		if m.kind != '0' {
			return fmt.Errorf("%q is %s, want an integer", m.key, kindName(m.kind))
		}
		if e.Seq, err = strconv.ParseUint(string(m.raw), 10, 64); err != nil {
			return fmt.Errorf("\"seq\" is %s, want a non-negative integer", m.raw)
		}
		*haveSeq = true
	case "timestamp":
		s, err := m.wantString()
		if err != nil {
			return err
		}
		if e.Timestamp, err = ParseTimestamp(s); err != nil {
			return err
		}
		*haveTime = true
	case "agent":
		e.Agent, err = m.wantString()
	case "action":
		var s string
		s, err = m.wantString()
		e.Action = Action(s)
	case "tool":
		e.Tool, err = m.wantString()
	case "params":
		*params = m.canonical()
	case "params_sha256":
		e.ParamsDigest, err = decodeDigest(m)
	case "result":
		var s string
		s, err = m.wantString()
		e.Result = Result(s)
	case "reason":
		e.Reason, err = m.wantString()
	case "rules":
		e.Rules, err = decodeStrings(m)
	case "intent":
		if m.kind != '0' {
			return fmt.Errorf("%q is %s, want an integer", m.key, kindName(m.kind))
		}
		var n uint64
		if n, err = strconv.ParseUint(string(m.raw), 10, 64); err != nil {
			return fmt.Errorf("\"intent\" is %s, want a non-negative integer", m.raw)
		}
		e.Intent = &n
	case "trust_score":
		var n int64
		n, err = m.wantInt(strconv.IntSize)
		score := int(n)
		e.TrustScore = &score
	case "duration_us":
		e.DurationUS, err = m.wantInt(64)
	case "client":
		e.Client, err = m.wantString()
	case "caller":
		e.Caller, err = decodeCaller(m)
	case "upstream":
		e.Upstream, err = m.wantString()
	case "enforced":
		if m.kind != 't' && m.kind != 'f' {
			return fmt.Errorf("%q is %s, want true or false", m.key, kindName(m.kind))
		}
		enforced := m.kind == 't'
		e.Enforced = &enforced
	case "details":
		*details = m.canonical()
	default:
		return fmt.Errorf("unknown member %q", m.key)
	}
	return err
}

// canonical returns the canonical JSON of any member value, in memory not
// shared with the parsed input.
func (m *jsonMember) canonical() []byte {
	switch m.kind {
	case '"':
		return appendString(nil, m.str)
	case '0':
		return bytes.Clone(m.raw) // a number's literal points into the input
	}
	return m.raw
}

func decodeDigest(m *jsonMember) (*ParamsDigest, error) {
	if m.kind != '{' {
		return nil, fmt.Errorf("%q is %s, want an object", m.key, kindName(m.kind))
	}
	var buf [2]jsonMember
	ms, err := objectMembers(m.raw, 2, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("%q: %v", m.key, err)
	}
	d := &ParamsDigest{}
	var haveHash, haveBytes bool
	for i := range ms {
		switch ms[i].key {
		case "sha256":
			d.SHA256, err = ms[i].wantString()
			haveHash = true
		case "bytes":
			d.Bytes, err = ms[i].wantInt(64)
			haveBytes = true
		default:
			err = fmt.Errorf("unknown member %q", ms[i].key)
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %v", m.key, err)
		}
	}
	if !haveHash || !haveBytes {
		return nil, fmt.Errorf("%q needs both \"sha256\" and \"bytes\"", m.key)
	}
	return d, nil
}

func decodeCaller(m *jsonMember) (*Caller, error) {
	if m.kind != '{' {
		return nil, fmt.Errorf("%q is %s, want an object", m.key, kindName(m.kind))
	}
	var buf [4]jsonMember
	ms, err := objectMembers(m.raw, 4, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("%q: %v", m.key, err)
	}
	c := &Caller{}
	for i := range ms {
		switch ms[i].key {
		case "id":
			c.ID, err = ms[i].wantString()
		case "kind":
			c.Kind, err = ms[i].wantString()
		case "client_id":
			c.ClientID, err = ms[i].wantString()
		case "scopes":
			c.Scopes, err = decodeStrings(&ms[i])
		default:
			err = fmt.Errorf("unknown member %q", ms[i].key)
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %v", m.key, err)
		}
	}
	return c, nil
}

func decodeStrings(m *jsonMember) ([]string, error) {
	if m.kind != '[' {
		return nil, fmt.Errorf("%q is %s, want an array of strings", m.key, kindName(m.kind))
	}
	p := jsonParser{s: m.raw, i: 1} // canonical: no whitespace
	var out []string
	for p.s[p.i] != ']' {
		if p.s[p.i] != '"' {
			return nil, fmt.Errorf("%q[%d] is not a string", m.key, len(out))
		}
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if p.s[p.i] == ',' {
			p.i++
		}
	}
	return out, nil
}

// CapParams prepares tool-call parameters for an entry. It returns raw in
// canonical form (see [CanonicalJSON]) as params when that form is at most
// max bytes long, and otherwise nil params and a digest of the canonical form
// for [Entry.ParamsDigest]. max <= 0 selects [DefaultParamsCap]. Empty raw
// (no parameters) yields nil, nil. The digest does not depend on the key
// order or whitespace of raw.
func CapParams(raw json.RawMessage, max int) (params json.RawMessage, digest *ParamsDigest, err error) {
	if len(raw) == 0 {
		return nil, nil, nil
	}
	if max <= 0 {
		max = DefaultParamsCap
	}
	c, err := CanonicalJSON(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: params are not valid JSON: %v", ErrInvalidEntry, err)
	}
	if len(c) <= max {
		return c, nil, nil
	}
	sum := sha256.Sum256(c)
	return nil, &ParamsDigest{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(c))}, nil
}

// firstDifference describes where got first differs from want.
func firstDifference(got, want []byte) error {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%w: first difference at byte %d (canonical form continues %q, input has %q)",
		ErrNonCanonical, i, excerpt(want, i), excerpt(got, i))
}

func excerpt(b []byte, at int) string {
	if at >= len(b) {
		return ""
	}
	end := min(at+24, len(b))
	return string(b[at:end])
}
