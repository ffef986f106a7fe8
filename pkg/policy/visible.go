package policy

import (
	"context"
	"slices"
)

// Hides reports whether a pre-call rule blocks every call to call.Tool by
// call.Caller whatever its arguments: an enabled block rule without a
// limit whose condition reads neither params, output nor trust_score (nor
// calls has_secret) and is true for this tool and caller. Listings
// (tools/list, prompts/list, resources/list) leave such tools out, as the
// MCP 2026-07-28 revision allows lists to vary by authorization: a caller
// sees only what it could call. Nothing is counted, and a condition that
// fails to evaluate does not hide the tool (the call itself is then
// refused and audited). In shadow mode nothing is hidden.
func (e *Engine) Hides(ctx context.Context, call *Call) bool {
	if e.opts.Shadow {
		return false
	}
	set := e.set.Load()
	st := e.pool.Get().(*evalState)
	defer st.release()
	st.begin(ctx, set, PreCall, call, "", nil)
	for _, fr := range set.stages[PreCall] {
		for _, r := range fr.rules {
			if r.Action != Block || r.Limit != nil || !r.argsFree {
				continue
			}
			if r.tools != nil && !slices.Contains(r.tools, call.Tool) {
				continue
			}
			out, err := st.vm.Run(r.program, st.env)
			if ok, _ := out.(bool); err == nil && ok {
				return true
			}
		}
	}
	return false
}
