// Package policy loads, validates and evaluates agentmesh policy files
// (DESIGN.md, "Policy files"), the format of the seed:
//
//	policies:
//	  - name: "rate-limit-api-calls"
//	    rules:
//	      - condition: "tool == 'api_call'"
//	        limit: "100/hour"
//	        action: "block"
//
// Loading (ParseFile, Load) decodes strictly with yamlpos, so every problem
// is reported at FILE:LINE:COL, including type errors inside a condition at
// the column of the offending token. Conditions are github.com/expr-lang/expr
// expressions compiled once against a typed environment (tool, params,
// output, agent, trust_score, client, upstream, upstream_tool, method, uri)
// with a few functions (glob, has_secret and a short list of expr
// built-ins); see env.go for the limits that keep them cheap.
//
// Evaluation (Engine) has two stages: PreCall runs the rules that do not
// use `output`, PostCall the ones that do. Every matching rule applies and
// the most restrictive action wins (block > require_approval > redact >
// warn > audit > allow); errors block (fail closed). A rule with a limit
// matches only for calls beyond N in the sliding window; the counters live
// behind ratelimit.Counter, and the check and the count of one call are one
// atomic step. The package also runs policy test files (LoadTestFile).
package policy
