package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// ConditionError is a problem in a condition, Offset characters (runes)
// into it.
type ConditionError struct {
	Offset int
	Msg    string
}

func (e *ConditionError) Error() string { return e.Msg }

// compiledCondition is a condition ready to run.
type compiledCondition struct {
	program *vm.Program
	// stage is PostCall when the condition reads `output`.
	stage Stage
	// tools, when not nil, lists the only tools the condition can be true
	// for (see toolGuard).
	tools []string
	// readsTrust: the condition reads trust_score, so a refusal it causes
	// may be trust's own doing (no trust cost for it).
	readsTrust bool
	// argsFree: the condition reads neither params, output nor
	// trust_score, so it decides for a tool and a caller before any call.
	argsFree bool
}

// CheckCondition compiles a condition as a rule would and reports the stage
// it runs in. Errors are *ConditionError.
func CheckCondition(cond string) (Stage, error) {
	c, err := compileCondition(cond)
	if err != nil {
		return PreCall, err
	}
	return c.stage, nil
}

var compileOptions = sync.OnceValue(func() []expr.Option {
	opts := []expr.Option{
		expr.Env(typeEnv),
		expr.AsBool(),
		expr.MaxNodes(MaxConditionNodes),
		expr.DisableAllBuiltins(),
		expr.Function(fnGlob, globFunc, new(func(string, string) bool)),
	}
	for _, b := range builtins {
		opts = append(opts, expr.EnableBuiltin(b))
	}
	return opts
})

// compileCondition parses the condition, enforces the restrictions that keep
// it cheap, type-checks it against the environment and compiles it.
func compileCondition(cond string) (*compiledCondition, *ConditionError) {
	if strings.TrimSpace(cond) == "" {
		return nil, &ConditionError{Msg: "empty condition: write an expression that is true for the calls the rule applies to, e.g. \"tool == 'api_call'\""}
	}
	if len(cond) > MaxConditionBytes {
		return nil, &ConditionError{Msg: fmt.Sprintf("condition longer than %d bytes: split the rule", MaxConditionBytes)}
	}
	if !utf8.ValidString(cond) {
		return nil, &ConditionError{Msg: "condition is not valid UTF-8"}
	}
	cfg := conf.CreateNew()
	for _, op := range compileOptions() {
		op(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	tree, err := parser.ParseWithConfig(cond, cfg)
	if err != nil {
		return nil, conditionError(err)
	}
	r := &restrictions{}
	ast.Walk(&tree.Node, r)
	if r.err != nil {
		return nil, r.err
	}
	guard := toolGuard(tree.Node) // before the optimizer rewrites "in [...]"
	// What expr.Compile does, on the tree already parsed, with params.NAME
	// patched before the type check so that the patched calls are typed.
	ast.Walk(&tree.Node, paramPatch{})
	if _, err := checker.Check(tree, cfg); err != nil {
		return nil, conditionError(err)
	}
	ast.Walk(&tree.Node, fastCalls{})
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			err = fe.Bind(tree.Source)
		}
		return nil, conditionError(err)
	}
	program, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, conditionError(err)
	}
	for _, g := range r.globs {
		registerGlob(g)
	}
	c := &compiledCondition{program: program, stage: PreCall, tools: guard, readsTrust: r.usesTrust,
		argsFree: !r.usesParams && !r.usesTrust && !r.usesOutput}
	if r.usesOutput {
		c.stage = PostCall
	}
	return c, nil
}

// paramPatch rewrites params.NAME (and params['NAME']) into a call of
// fnParam, a plain map lookup. expr reads a member of a map through
// reflection, which allocates for every interface value; the typed call
// (func(any) any) does not, and params are read by most rules. The result
// is the same: the value, or nil for a missing key or nil params.
type paramPatch struct{}

func (paramPatch) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != varParams {
		return
	}
	if _, ok := m.Property.(*ast.StringNode); !ok {
		return
	}
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnParam}, Arguments: []ast.Node{m.Property}})
}

// fastCalls rewrites, once the condition is type checked, two calls into
// typed calls of functions in the environment, which expr makes without
// allocating (a variadic call allocates its arguments):
//   - the built-in string(x) becomes stringOf(x), which also returns a
//     string argument as it is instead of formatting a copy;
//   - glob(pattern, path) becomes globTyped, whose arguments the type check
//     has already seen as declared for glob.
type fastCalls struct{}

var (
	stringOfType  = reflect.TypeOf(stringOf)
	globTypedType = reflect.TypeOf(globTyped)
	stringType    = reflect.TypeFor[string]()
	boolType      = reflect.TypeFor[bool]()
)

func (fastCalls) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BuiltinNode:
		if n.Name == "string" && len(n.Arguments) == 1 {
			patchCall(node, fnString, stringOfType, n.Arguments, stringType)
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == fnGlob && len(n.Arguments) == 2 {
			patchCall(node, fnGlobTyped, globTypedType, n.Arguments, boolType)
		}
	}
}

func patchCall(node *ast.Node, fn string, fnType reflect.Type, args []ast.Node, result reflect.Type) {
	callee := &ast.IdentifierNode{Value: fn}
	callee.SetType(fnType)
	call := &ast.CallNode{Callee: callee, Arguments: args}
	ast.Patch(node, call)
	call.SetType(result)
}

// toolGuard finds conditions of the form "tool == 'x' and ..." or
// "tool in ['x', 'y'] and ...", and returns the tools. The engine skips such
// a rule for other tools without running it: most rules are about one tool,
// and this saves running most of a large set. Only the leftmost operand of
// the and-chain qualifies, where short-circuit evaluation guarantees that
// nothing else runs (and nothing else could fail) for another tool.
func toolGuard(n ast.Node) []string {
	for {
		b, ok := n.(*ast.BinaryNode)
		if !ok || (b.Operator != "and" && b.Operator != "&&") {
			break
		}
		n = b.Left
	}
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	isTool := func(n ast.Node) bool {
		id, ok := n.(*ast.IdentifierNode)
		return ok && id.Value == varTool
	}
	switch b.Operator {
	case "==":
		if s, ok := b.Right.(*ast.StringNode); ok && isTool(b.Left) {
			return []string{s.Value}
		}
		if s, ok := b.Left.(*ast.StringNode); ok && isTool(b.Right) {
			return []string{s.Value}
		}
	case "in":
		arr, ok := b.Right.(*ast.ArrayNode)
		if !ok || !isTool(b.Left) {
			return nil
		}
		tools := []string{}
		for _, e := range arr.Nodes {
			s, ok := e.(*ast.StringNode)
			if !ok {
				return nil
			}
			tools = append(tools, s.Value)
		}
		return tools
	}
	return nil
}

// restrictions walks a parsed condition: it rejects the constructs whose
// cost is not bounded by the condition's size times its input, notes
// whether `output` is used, and collects glob patterns written as literals.
type restrictions struct {
	err        *ConditionError
	usesOutput bool
	usesTrust  bool
	// usesParams: the condition reads params or calls has_secret, so it
	// cannot be decided without a call's arguments.
	usesParams bool
	globs      []string
}

func (r *restrictions) fail(n ast.Node, format string, args ...any) {
	if from := startOf(n); r.err == nil || from < r.err.Offset {
		r.err = &ConditionError{Offset: from, Msg: fmt.Sprintf(format, args...)}
	}
}

// startOf is where the source of n begins: expr locates some nodes at
// their operator or property ("params.pattern" at "pattern").
func startOf(n ast.Node) int {
	f := &firstOffset{from: n.Location().From}
	ast.Walk(&n, f)
	return f.from
}

type firstOffset struct{ from int }

func (f *firstOffset) Visit(node *ast.Node) {
	if from := (*node).Location().From; from < f.from {
		f.from = from
	}
}

func (r *restrictions) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "$env":
			r.fail(n, "$env is not available in conditions: use the variables by name (%s)", variableList())
		case varOutput:
			r.usesOutput = true
		case varTrustScore:
			r.usesTrust = true
		case varParams, fnHasSecret:
			r.usesParams = true
		}
	case *ast.VariableDeclaratorNode:
		r.fail(n, "let is not allowed in conditions")
	case *ast.BinaryNode:
		switch n.Operator {
		case "..":
			r.fail(n, "ranges (a..b) are not allowed in conditions")
		case "matches":
			if _, ok := n.Right.(*ast.StringNode); !ok {
				r.fail(n.Right, "the regular expression after matches must be a string literal")
			}
		}
	case *ast.PredicateNode:
		inner := &predicateFinder{}
		ast.Walk(&n.Node, inner)
		if inner.found != nil {
			r.fail(inner.found, "predicates cannot be nested (their cost would multiply)")
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == fnGlob && len(n.Arguments) == 2 {
			if s, ok := n.Arguments[0].(*ast.StringNode); ok {
				r.globs = append(r.globs, s.Value)
			}
		}
	}
}

type predicateFinder struct{ found ast.Node }

func (p *predicateFinder) Visit(node *ast.Node) {
	if n, ok := (*node).(*ast.PredicateNode); ok && p.found == nil {
		p.found = n
	}
}

// conditionError turns an expr error into a ConditionError with a hint
// where one helps.
func conditionError(err error) *ConditionError {
	ce := &ConditionError{Msg: err.Error()}
	var fe *file.Error
	if errors.As(err, &fe) {
		ce.Offset, ce.Msg = fe.From, fe.Message
	}
	msg := strings.TrimSpace(ce.Msg)
	switch {
	case strings.HasPrefix(msg, "unknown name "):
		name := strings.TrimPrefix(msg, "unknown name ")
		if isExprBuiltin(name) {
			msg = fmt.Sprintf("%s is not available in conditions (functions: %s)", name, strings.Join(Functions(), ", "))
		} else {
			msg += fmt.Sprintf(" (variables: %s)", variableList())
		}
	case strings.Contains(msg, `Operator("matches")`):
		msg += ": matches is an operator, write TEXT matches 'REGEXP'"
	case strings.HasPrefix(msg, "expected bool, but got "):
		msg = "a condition must be true or false, but this one is " + strings.TrimPrefix(msg, "expected bool, but got ")
	case msg == "unexpected token EOF":
		msg = "unexpected end of the condition: is a parenthesis, bracket or quote left open?"
	}
	ce.Msg = msg
	return ce
}

func isExprBuiltin(name string) bool {
	for _, f := range builtin.Builtins {
		if f.Name == name {
			return true
		}
	}
	return false
}
