package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/expr-lang/expr/vm"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// File is one loaded, validated and compiled policy file.
type File struct {
	Path string
	// DefaultAction applies to a call no rule of this file matched before
	// the call (it never applies after the call).
	DefaultAction Action
	Policies      []*Policy
}

// Policy is a named group of rules.
type Policy struct {
	Name        string
	Description string
	Enabled     bool
	Rules       []*Rule
	Pos         yamlpos.Pos
}

// Rule is one compiled rule.
type Rule struct {
	// ID is "POLICY/NAME", or "POLICY/#INDEX" (0-based) for a rule without a
	// name: what decisions and audit entries list, and the rate-limit
	// counter's rule.
	ID          string
	Policy      string
	Name        string
	Index       int
	Description string
	Condition   string
	Action      Action
	Severity    Severity
	Message     string
	// Limit, when set, makes the action apply only to matching calls
	// beyond Limit.Limit within any Limit.Per.
	Limit *ratelimit.Window
	// PerServer makes the limit count the server's calls together
	// (`per: server`) rather than each caller's (`per: caller`, the
	// default).
	PerServer bool
	// Enabled is false when the rule or its policy says enabled: false.
	Enabled bool
	Stage   Stage
	// Pos is where the rule is written; ConditionPos its condition.
	Pos, ConditionPos yamlpos.Pos

	counter string // the rule part of the counter key
	source  string // Pos as text
	ordinal int    // position in the file, counting every policy's rules
	program *vm.Program
	tools   []string // see toolGuard
	// readsTrust: the condition reads trust_score.
	readsTrust bool
	// argsFree: see compiledCondition.
	argsFree bool
}

// ParseFile decodes, validates and compiles one policy file. name is used
// in messages. Errors are a yamlpos.ErrorList: every problem, each at
// FILE:LINE:COL.
func ParseFile(name string, data []byte) (*File, error) {
	var spec fileSpec
	if len(data) > MaxFileBytes {
		return nil, yamlpos.ErrorList{{Pos: yamlpos.Pos{File: name}, Msg: fmt.Sprintf("policy file larger than %d bytes", MaxFileBytes)}}
	}
	// Decoding errors (unknown keys, wrong types) do not stop the checks of
	// what did decode: a CI run reports every problem at once.
	positions, err := yamlpos.DecodePositions(name, data, &spec)
	decodeErrs := yamlpos.Errors(err)
	f := &File{Path: name, DefaultAction: Allow}
	var errs yamlpos.ErrorList
	if spec.DefaultAction != "" {
		a, err := parseAction(spec.DefaultAction)
		if err != nil {
			errs = append(errs, spec.DefaultActionPos.Errorf("default_action: %v", err))
		}
		f.DefaultAction = a
	}
	seen := map[string]yamlpos.Pos{}
	ordinal := 0
	for i, ps := range spec.Policies {
		if !ps.Pos.IsValid() { // an empty entry ("- " alone)
			ps.Pos = positions.Of(name, fmt.Sprintf("policies[%d]", i))
		}
		p := &Policy{Name: ps.Name, Description: ps.Description, Enabled: ps.Enabled == nil || *ps.Enabled, Pos: ps.Pos}
		switch {
		case ps.Name == "":
			errs = append(errs, ps.Pos.Errorf("policy needs a name: it identifies the policy's rules in decisions, audit entries and rate-limit counters"))
		case badName(ps.Name) != "":
			errs = append(errs, ps.NamePos.Errorf("policy name %q %s", ps.Name, badName(ps.Name)))
		}
		if prev, dup := seen[ps.Name]; dup && ps.Name != "" {
			errs = append(errs, ps.NamePos.Errorf("duplicate policy name %q (first at line %d)", ps.Name, prev.Line))
		}
		seen[ps.Name] = ps.NamePos
		errs = append(errs, p.parseRules(ps, data, positions, i, &ordinal)...)
		f.Policies = append(f.Policies, p)
	}
	if len(decodeErrs) > 0 {
		errs = mergeErrors(decodeErrs, errs)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// mergeErrors adds to the decoding errors the later checks' errors, except
// those at a position where decoding already failed (a rule whose
// condition had the wrong type would also be "missing" its condition).
func mergeErrors(decode, checks yamlpos.ErrorList) yamlpos.ErrorList {
	at := map[yamlpos.Pos]bool{}
	for _, e := range decode {
		at[e.Pos] = true
	}
	out := append(yamlpos.ErrorList{}, decode...)
	for _, e := range checks {
		if !at[e.Pos] {
			out = append(out, e)
		}
	}
	return out
}

func (p *Policy) parseRules(ps policySpec, data []byte, positions yamlpos.Positions, pi int, ordinal *int) yamlpos.ErrorList {
	var errs yamlpos.ErrorList
	names := map[string]yamlpos.Pos{}
	for i, rs := range ps.Rules {
		if !rs.Pos.IsValid() { // an empty entry
			rs.Pos = positions.Of(p.Pos.File, fmt.Sprintf("policies[%d].rules[%d]", pi, i))
		}
		r := &Rule{
			Policy: ps.Name, Name: rs.Name, Index: i, Description: rs.Description,
			Condition: rs.Condition, Message: rs.Message,
			Enabled: p.Enabled && (rs.Enabled == nil || *rs.Enabled),
			Pos:     rs.Pos, ConditionPos: rs.ConditionPos,
			source: rs.Pos.String(), ordinal: *ordinal,
		}
		*ordinal++
		r.counter = "#" + strconv.Itoa(i)
		if rs.Name != "" {
			r.counter = rs.Name
			if why := badName(rs.Name); why != "" {
				errs = append(errs, rs.NamePos.Errorf("rule name %q %s", rs.Name, why))
			}
			if prev, dup := names[rs.Name]; dup {
				errs = append(errs, rs.NamePos.Errorf("duplicate rule name %q in policy %q (first at line %d)", rs.Name, ps.Name, prev.Line))
			}
			names[rs.Name] = rs.NamePos
		}
		r.ID = ps.Name + "/" + r.counter
		if rs.Action == "" {
			errs = append(errs, rs.Pos.Errorf("rule %s needs an action (one of %s)", r.ID, actionList()))
		} else if a, err := parseAction(rs.Action); err != nil {
			errs = append(errs, rs.ActionPos.Errorf("%v", err))
		} else {
			r.Action = a
		}
		if rs.Severity != "" {
			s, err := parseSeverity(rs.Severity)
			if err != nil {
				errs = append(errs, rs.SeverityPos.Errorf("%v", err))
			}
			r.Severity = s
		}
		if rs.Limit != "" {
			w, err := ratelimit.ParseWindow(rs.Limit)
			if err != nil {
				errs = append(errs, rs.LimitPos.Errorf("%v", err))
			} else {
				r.Limit = &w
			}
		}
		switch rs.Per {
		case "", "caller":
		case "server":
			r.PerServer = true
		default:
			errs = append(errs, rs.PerPos.Errorf("per: %q is not caller or server (caller: each caller has its own counter; server: one counter for every caller)", rs.Per))
		}
		if rs.Per != "" && rs.Limit == "" {
			errs = append(errs, rs.PerPos.Errorf("per: applies to a limit, and rule %s has none", r.ID))
		}
		if !rs.ConditionPos.IsValid() {
			errs = append(errs, rs.Pos.Errorf("rule %s needs a condition, e.g. \"tool == 'api_call'\"", r.ID))
		} else if c, cerr := compileCondition(rs.Condition); cerr != nil {
			pos := exprPos(data, rs.ConditionPos, rs.Condition, cerr.Offset)
			errs = append(errs, pos.Errorf("%s", cerr.Msg))
		} else {
			r.program, r.Stage, r.tools, r.readsTrust, r.argsFree = c.program, c.stage, c.tools, c.readsTrust, c.argsFree
		}
		p.Rules = append(p.Rules, r)
	}
	return errs
}

// badName says what is wrong with a policy or rule name, or "".
func badName(name string) string {
	switch {
	case len(name) > 128:
		return "is longer than 128 characters"
	case strings.Contains(name, "/"):
		return "contains /, which separates policy and rule in rule IDs"
	case strings.HasPrefix(name, "#"):
		return "starts with #, which marks unnamed rules (#INDEX)"
	case strings.TrimSpace(name) != name:
		return "starts or ends with white space"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "contains control characters"
	}
	return ""
}

// Set is the policy files in force, compiled for evaluation.
type Set struct {
	Files []*File
	// stages[stage] lists, file by file, the enabled rules of that stage.
	stages [2][]fileRules
	// hasPost is true when any enabled rule runs after the call.
	hasPost bool
}

type fileRules struct {
	file  *File
	rules []*Rule
}

// NewSet combines files. Policy names must be unique across them: they
// name the rate-limit counters and the rules in audit entries.
func NewSet(files ...*File) (*Set, error) {
	s := &Set{Files: files}
	seen := map[string]*Policy{}
	var errs yamlpos.ErrorList
	for _, f := range files {
		var pre, post []*Rule
		for _, p := range f.Policies {
			if prev, dup := seen[p.Name]; dup {
				errs = append(errs, p.Pos.Errorf("duplicate policy name %q (also at %s)", p.Name, prev.Pos))
			}
			seen[p.Name] = p
			for _, r := range p.Rules {
				switch {
				case !r.Enabled:
				case r.Stage == PostCall:
					post = append(post, r)
				default:
					pre = append(pre, r)
				}
			}
		}
		s.stages[PreCall] = append(s.stages[PreCall], fileRules{f, pre})
		s.stages[PostCall] = append(s.stages[PostCall], fileRules{f, post})
		s.hasPost = s.hasPost || len(post) > 0
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Rules lists every rule of the set, disabled ones included, in file order.
func (s *Set) Rules() []*Rule {
	var rules []*Rule
	for _, f := range s.Files {
		for _, p := range f.Policies {
			rules = append(rules, p.Rules...)
		}
	}
	return rules
}

// ReadError is a policy file or directory that could not be read (as
// opposed to one that was read and is invalid).
type ReadError struct {
	Path string
	Err  error
}

func (e *ReadError) Error() string { return fmt.Sprintf("reading %s: %v", e.Path, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// Expand lists the policy files that paths name: a file as given, a
// directory as its *.yaml and *.yml files in name order, except the policy
// tests beside them (*_test.yaml, *_test.yml). Errors are *ReadError.
func Expand(paths ...string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, &ReadError{p, err}
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, &ReadError{p, err}
		}
		var names []string
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || !IsPolicyFileName(n) {
				continue
			}
			names = append(names, filepath.Join(p, n))
		}
		sort.Strings(names)
		files = append(files, names...)
	}
	return files, nil
}

// IsPolicyFileName reports whether a directory entry is loaded as a policy
// file: *.yaml or *.yml, but not a policy test (*_test.yaml).
func IsPolicyFileName(name string) bool {
	ext := filepath.Ext(name)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(name, ext), "_test")
}

// ReadFile reads a file of at most MaxFileBytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ReadError{path, err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &ReadError{path, err}
	}
	return data, nil
}

// Load reads, validates and compiles the policy files that paths name (see
// Expand). A file that cannot be read is a *ReadError; otherwise every
// problem in every file is reported, as a yamlpos.ErrorList.
func Load(paths ...string) (*Set, error) {
	names, err := Expand(paths...)
	if err != nil {
		return nil, err
	}
	var files []*File
	var errs yamlpos.ErrorList
	for _, name := range names {
		data, err := ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := ParseFile(name, data)
		if err != nil {
			errs = append(errs, yamlpos.Errors(err)...)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	return NewSet(files...)
}

// IsReadError reports whether err is (or wraps) a *ReadError.
func IsReadError(err error) bool {
	var re *ReadError
	return errors.As(err, &re)
}
