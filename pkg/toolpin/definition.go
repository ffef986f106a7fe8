// Package toolpin pins the definitions of upstream MCP tools and scans them
// for tool poisoning.
//
// When agentmesh proxies an upstream MCP server, every tool in a tools/list
// result is reduced to a [Definition], hashed ([Definition.Hash]) and pinned
// on first sight. A later definition with a different hash (a "rug pull") is
// held back until an operator approves it after reading [Diff]. [Scan] flags
// descriptions and schema texts that carry known tool-poisoning patterns.
//
// The package is pure: no I/O, no clock, no state. Storing pins and deciding
// what to do with a changed or suspicious tool is the proxy's job.
//
// # What is pinned
//
// The Tool object of the MCP specification, revision 2025-11-25
// (schema.ts, interface Tool) has the members name, title, description,
// inputSchema, outputSchema, annotations, execution, icons and _meta. All of
// them except _meta are pinned, and so is every other member the upstream
// sends: a member the specification does not define may still reach the
// model, so adding one must change the hash. _meta is left out because it is
// reserved for protocol-level metadata that servers may vary between calls
// (progress tokens, trace ids) and is not shown to the model.
//
// # Canonical form
//
// [Definition.Canonical] is the byte string that is hashed. It is one JSON
// object (RFC 8259) written with:
//
//   - no whitespace between tokens;
//   - object members sorted by key, comparing the keys' UTF-8 bytes, at every
//     depth; arrays keep their order;
//   - numbers copied exactly as the upstream wrote them (1, 1.0 and 1e0 stay
//     distinct);
//   - strings escaped as encoding/json escapes them, minus HTML escaping:
//     quotation mark and reverse solidus as \" and \\; U+0008, U+0009,
//     U+000A, U+000C and U+000D as \b, \t, \n, \f and \r; other characters
//     below U+0020 as \u00xx (lower-case hex); U+2028 and U+2029 as \u2028
//     and \u2029; every other character, including '<', '>' and '&', as its
//     UTF-8 bytes. Bytes that are not valid UTF-8 (possible only in a
//     Definition built by hand) become the character U+FFFD, where
//     encoding/json would write the escape \ufffd, so that the canonical
//     form of any Definition is a fixed point of [FromRaw];
//   - true, false and null unchanged;
//   - the top-level members name (always), title and description (when not
//     empty), and inputSchema, outputSchema, annotations, execution, icons
//     and any other member (when present, even if null).
//
// [Definition.Hash] is "sha256:" followed by the lower-case hex SHA-256 of
// that byte string.
package toolpin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects [FromRaw] accepts, so that
// a hostile upstream cannot exhaust the stack of the code that walks a
// definition. Real JSON Schemas nest a few dozen levels at most.
const maxDepth = 128

// Definition is the pinned part of one MCP tool, as defined by the "Tool"
// object of the MCP specification, revision 2025-11-25: every member except
// _meta. The JSON-valued members are kept as the upstream sent them; they are
// canonicalized only when hashed. A nil RawMessage means the member was
// absent.
type Definition struct {
	// Name is the tool's programmatic name as the upstream exposes it
	// (Tool.name), before any renaming by the proxy.
	Name string
	// Title is the human-readable display name (Tool.title), "" if absent.
	Title string
	// Description is the text the model reads (Tool.description), "" if
	// absent.
	Description string
	// InputSchema is the JSON Schema of the arguments (Tool.inputSchema).
	InputSchema json.RawMessage
	// OutputSchema is the JSON Schema of structuredContent
	// (Tool.outputSchema).
	OutputSchema json.RawMessage
	// Annotations are the ToolAnnotations hints (Tool.annotations).
	Annotations json.RawMessage
	// Execution is the ToolExecution object, e.g. {"taskSupport":"optional"}
	// (Tool.execution).
	Execution json.RawMessage
	// Icons is the array of Icon objects (Tool.icons).
	Icons json.RawMessage
	// Extra holds every other top-level member except _meta, keyed by name,
	// so that a member the specification does not define still changes the
	// hash. Nil when there are none.
	Extra map[string]json.RawMessage
}

// FromRaw extracts the Definition of one tool object as it appears in the
// "tools" array of a tools/list result (MCP 2025-11-25, ListToolsResult).
//
// The object must be valid JSON, nested at most 128 deep, without duplicate
// keys at any depth (a duplicate would let the proxy and the client read
// different values from the same bytes), and must have a non-empty string
// "name". "title" and "description", when present, must be strings or null
// (null is treated as absent).
func FromRaw(raw json.RawMessage) (Definition, error) {
	if err := checkStrictJSON(raw); err != nil {
		return Definition{}, fmt.Errorf("tool definition is not usable JSON: %w", err)
	}
	if b := bytes.TrimLeft(raw, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return Definition{}, errors.New("tool definition is not a JSON object")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return Definition{}, fmt.Errorf("tool definition is not a JSON object: %w", err)
	}

	var d Definition
	name, ok, err := stringMember(members, "name")
	switch {
	case err != nil:
		return Definition{}, err
	case !ok || name == "":
		return Definition{}, errors.New(`tool definition has no "name": every MCP tool needs a non-empty string name`)
	}
	d.Name = name
	if d.Title, _, err = stringMember(members, "title"); err != nil {
		return Definition{}, fmt.Errorf("tool %q: %w", d.Name, err)
	}
	if d.Description, _, err = stringMember(members, "description"); err != nil {
		return Definition{}, fmt.Errorf("tool %q: %w", d.Name, err)
	}
	for key, value := range members {
		switch key {
		case "name", "title", "description", "_meta":
		case "inputSchema":
			d.InputSchema = value
		case "outputSchema":
			d.OutputSchema = value
		case "annotations":
			d.Annotations = value
		case "execution":
			d.Execution = value
		case "icons":
			d.Icons = value
		default:
			if d.Extra == nil {
				d.Extra = make(map[string]json.RawMessage)
			}
			d.Extra[key] = value
		}
	}
	return d, nil
}

// stringMember returns the string value of members[key]. ok is false when the
// member is absent or null.
func stringMember(members map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, present := members[key]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("tool definition member %q is not a string", key)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("tool definition member %q: %w", key, err)
	}
	return s, true, nil
}

// checkStrictJSON checks that raw holds exactly one JSON value, nested at
// most maxDepth deep, with no duplicate object keys.
func checkStrictJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := checkValue(dec, 0); err != nil {
		if err == io.EOF {
			return errors.New("empty input")
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxDepth {
		return fmt.Errorf("nested more than %d deep", maxDepth)
	}
	var seen map[string]bool
	if delim == '{' {
		seen = make(map[string]bool)
	}
	for dec.More() {
		if seen != nil {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			if seen[key] {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen[key] = true
		}
		if err := checkValue(dec, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// Canonical returns the canonical JSON encoding of d described in the package
// documentation: same semantic JSON, same bytes, whatever the key order and
// whitespace of the upstream's encoding.
//
// A JSON-valued member that does not hold exactly one JSON value (possible
// only for a Definition built by hand, never for one from [FromRaw]) is
// encoded as a JSON string holding its bytes, so that it still contributes to
// the hash.
func (d Definition) Canonical() []byte {
	obj := make(map[string]any, 8+len(d.Extra))
	for key, raw := range d.Extra {
		if !isPinnedMember(key) && key != "_meta" && len(raw) > 0 {
			obj[key] = decodeValue(raw)
		}
	}
	obj["name"] = d.Name
	if d.Title != "" {
		obj["title"] = d.Title
	}
	if d.Description != "" {
		obj["description"] = d.Description
	}
	for _, m := range []struct {
		key string
		raw json.RawMessage
	}{
		{"inputSchema", d.InputSchema},
		{"outputSchema", d.OutputSchema},
		{"annotations", d.Annotations},
		{"execution", d.Execution},
		{"icons", d.Icons},
	} {
		if len(m.raw) > 0 {
			obj[m.key] = decodeValue(m.raw)
		}
	}
	return appendCanonical(make([]byte, 0, 256), obj)
}

// isPinnedMember reports whether key is a Tool member that has its own field
// in Definition.
func isPinnedMember(key string) bool {
	switch key {
	case "name", "title", "description", "inputSchema", "outputSchema", "annotations", "execution", "icons":
		return true
	}
	return false
}

// decodeValue decodes one JSON value with numbers kept as written. Input that
// is not exactly one JSON value decodes to the string of its bytes.
func decodeValue(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	if _, err := dec.Token(); err != io.EOF {
		return string(raw)
	}
	return v
}

// appendCanonical appends the canonical encoding of v, a value produced by
// encoding/json decoding into any with UseNumber.
func appendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case json.Number:
		return append(b, x...)
	case string:
		return appendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, x[k])
		}
		return append(b, '}')
	}
	panic(fmt.Sprintf("toolpin: unexpected %T in decoded JSON", v))
}

// appendString appends s as a JSON string with encoding/json's escaping, HTML
// escaping off (see the package documentation).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, `\b`...)
			case c == '\f':
				b = append(b, `\f`...)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Hash returns "sha256:" followed by the lower-case hex SHA-256 of
// d.Canonical(). It is the value a pin stores.
func (d Definition) Hash() string {
	sum := sha256.Sum256(d.Canonical())
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Pretty returns the canonical form indented by two spaces per level, one
// member or element per line, for operators to read and for [Diff] to
// compare line by line.
func (d Definition) Pretty() string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, d.Canonical(), "", "  "); err != nil {
		panic("toolpin: canonical form is not valid JSON: " + err.Error())
	}
	return buf.String()
}
