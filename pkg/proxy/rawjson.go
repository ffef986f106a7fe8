package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// member is one member of a JSON object, its value as written.
type member struct {
	key   string
	value json.RawMessage
}

// members splits a JSON object into its members, in order, each value
// byte for byte as written.
func members(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ms = append(ms, member{key, v})
	}
	return ms, nil
}

// object writes members back as one compact JSON object (values as they
// are).
func object(ms []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// renamed returns the object raw with member key set to value, every other
// member (order, spelling, values) kept as the upstream wrote it.
func renamed(raw json.RawMessage, key, value string) (json.RawMessage, error) {
	ms, err := members(raw)
	if err != nil {
		return nil, err
	}
	v, _ := json.Marshal(value)
	found := false
	for i := range ms {
		if ms[i].key == key {
			ms[i].value, found = v, true
		}
	}
	if !found {
		ms = append([]member{{key, v}}, ms...)
	}
	return object(ms), nil
}

// withMember returns the object raw with member key replaced (or added
// last) by value.
func withMember(raw json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	ms, err := members(raw)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if ms[i].key == key {
			ms[i].value = value
			return object(ms), nil
		}
	}
	return object(append(ms, member{key, value})), nil
}

// rawFields turns an object's members into notification params whose
// values are encoded as written (mcp-go marshals params as a map).
func rawFields(raw json.RawMessage) (map[string]any, error) {
	ms, err := members(raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(ms))
	for _, m := range ms {
		out[m.key] = m.value
	}
	return out, nil
}
