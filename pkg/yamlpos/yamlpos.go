// Package yamlpos decodes YAML documents into Go structs strictly and
// reports every problem at FILE:LINE:COL.
//
// gopkg.in/yaml.v3's KnownFields mode rejects unknown keys but reports only
// a line, and stops at the first type error. Configuration and policy files
// are edited by people and checked in CI, so agentmesh wants every error, each
// with a column, in the form editors and CI annotators understand
// ("agentmesh.yaml:12:5: unknown key ...").
//
// The decoder walks the yaml.Node tree together with the destination type:
//   - struct fields are matched by their `yaml:"name"` tag; unknown and
//     duplicate keys are errors at the key;
//   - scalars are decoded by yaml.v3 itself and type errors are reported at
//     the value;
//   - a field of type Pos tagged `pos:"key"` receives the position of that
//     key's value, and `pos:"."` the position of the mapping itself, so
//     later stages (expression compilers, validators) can report positions
//     too.
package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a YAML file. Line and Column are 1-based.
type Pos struct {
	File   string
	Line   int
	Column int
}

// IsValid reports whether the position points into a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

func (p Pos) String() string {
	if !p.IsValid() {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Errorf returns an error located at p.
func (p Pos) Errorf(format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// Error is one problem at one position.
type Error struct {
	Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in one decode, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil for an empty list, so callers can `return list.Err()`.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// Sort orders the errors by file, line and column.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// Errors flattens err into its located errors. Errors that carry no
// position are returned with an empty Pos.
func Errors(err error) ErrorList {
	if err == nil {
		return nil
	}
	var list ErrorList
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return ErrorList{one}
	}
	return ErrorList{{Msg: err.Error()}}
}

// Positions maps dotted value paths ("agent.name", "scopes[0].resources[1]")
// to where the value was written.
type Positions map[string]Pos

// Of returns the position of path, or the file alone when path was not
// written in the file (a default value).
func (p Positions) Of(file, path string) Pos {
	if pos, ok := p[path]; ok {
		return pos
	}
	return Pos{File: file}
}

// Decode parses data (read from file, used in messages) and decodes it into
// out, which must be a pointer to a struct. Keys absent from the document
// leave out's existing values alone, so out may be pre-filled with defaults.
// An empty document leaves out unchanged. All problems are returned as an
// ErrorList.
func Decode(file string, data []byte, out any) error {
	_, err := DecodePositions(file, data, out)
	return err
}

// DecodePositions is Decode that also returns the position of every value.
func DecodePositions(file string, data []byte, out any) (Positions, error) {
	pos := Positions{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return pos, nil
		}
		return pos, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return pos, ErrorList{{Pos: nodePos(file, &extra), Msg: "only one YAML document is allowed per file"}}
	}
	return pos, decodeNode(file, &doc, out, pos)
}

// DecodeNode decodes an already parsed node into out.
func DecodeNode(file string, n *yaml.Node, out any) error {
	return decodeNode(file, n, out, nil)
}

func decodeNode(file string, n *yaml.Node, out any, pos Positions) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("yamlpos: DecodeNode needs a non-nil pointer, got %T", out)
	}
	d := &decoder{file: file, pos: pos}
	d.decode(n, v.Elem(), "")
	return d.errs.Err()
}

// syntaxError converts a yaml.v3 parse error ("yaml: line 3: ...") into a
// located error. yaml.v3 does not expose the column of syntax errors.
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		return ErrorList{{Pos: Pos{File: file, Line: line, Column: 1}, Msg: "YAML syntax error: " + msg}}
	}
	return ErrorList{{Pos: Pos{File: file}, Msg: "YAML syntax error: " + msg}}
}

func nodePos(file string, n *yaml.Node) Pos {
	return Pos{File: file, Line: n.Line, Column: n.Column}
}

type decoder struct {
	file string
	errs ErrorList
	// pos records the position of every decoded value by its dotted path
	// ("tools.filesystem.roots[0].mount"), for validators that run later.
	pos Positions
	// aliases counts alias expansions to stop "billion laughs" documents.
	aliases int
}

const maxAliasExpansions = 1000

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	posType         = reflect.TypeFor[Pos]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: nodePos(d.file, n), Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.pos != nil && n.Kind != yaml.DocumentNode {
		d.pos[path] = nodePos(d.file, n)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	case yaml.AliasNode:
		d.aliases++
		if d.aliases > maxAliasExpansions {
			d.errorf(n, "too many alias expansions (limit %d)", maxAliasExpansions)
			return
		}
		d.decode(n.Alias, v, path)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.CanAddr() && reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		d.decodeScalar(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of keys to values, got %s", describe(path), kindName(n))
		return
	}
	fields, posFields := structFields(v.Type())
	if i, ok := posFields["."]; ok {
		v.Field(i).Set(reflect.ValueOf(nodePos(d.file, n)))
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "keys in %s must be plain names", describe(path))
			continue
		}
		name := k.Value
		if prev, dup := seen[name]; dup {
			d.errorf(k, "duplicate key %q (first set at line %d)", name, prev.Line)
			continue
		}
		seen[name] = k
		idx, ok := fields[name]
		if !ok {
			d.errorf(k, "unknown key %q in %s (known keys: %s)", name, describe(path), knownKeys(fields))
			continue
		}
		if pi, ok := posFields[name]; ok {
			v.Field(pi).Set(reflect.ValueOf(nodePos(d.file, val)))
		}
		d.decode(val, v.Field(idx), join(path, name))
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func knownKeys(fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// structFields maps yaml key names to field indexes, and pos tags to the
// indexes of Pos fields.
func structFields(t reflect.Type) (fields map[string]int, posFields map[string]int) {
	fields = map[string]int{}
	posFields = map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Type == posType {
			if p, ok := f.Tag.Lookup("pos"); ok {
				posFields[p] = i
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
	}
	return fields, posFields
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list, got %s", describe(path), kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, got %s", describe(path), kindName(n))
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode {
			if seen[k.Value] {
				d.errorf(k, "duplicate key %q in %s", k.Value, describe(path))
				continue
			}
			seen[k.Value] = true
		}
		key := reflect.New(v.Type().Key()).Elem()
		d.decode(k, key, path)
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, join(path, k.Value))
		out.SetMapIndex(key, elem)
	}
	v.Set(out)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	isIface := v.Kind() == reflect.Interface
	if !isIface && n.Kind != yaml.ScalarNode && !reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		d.errorf(n, "%s must be %s, got %s", describe(path), typeName(v.Type()), kindName(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.errorf(n, "%s: %s", describe(path), cleanYAMLError(err, n, v.Type()))
	}
}

// cleanYAMLError turns yaml.v3's "yaml: unmarshal errors:\n line 3: cannot
// unmarshal !!str `abc` into int" into a sentence without the line prefix
// (the position is reported separately).
func cleanYAMLError(err error, n *yaml.Node, t reflect.Type) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got %s", typeName(t), kindName(n))
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return fmt.Sprintf("the boolean %s", n.Value)
		case "!!int", "!!float":
			return fmt.Sprintf("the number %s", n.Value)
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an alias"
}
