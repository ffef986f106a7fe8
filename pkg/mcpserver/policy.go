package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/redact"
)

// EmbeddedPolicyName names the default policy when no file is configured.
const EmbeddedPolicyName = "embedded:policies/default.yaml"

// PolicyPaths returns the configured policy files and directories as host
// paths; empty means the embedded default policy.
func PolicyPaths(cfg *config.Config) []string {
	paths := make([]string, len(cfg.Policies.Paths))
	for i, p := range cfg.Policies.Paths {
		paths[i] = cfg.ResolvePath(p)
	}
	return paths
}

// LoadPolicies loads the configured policies (or the embedded default).
func LoadPolicies(cfg *config.Config) (*policy.Set, []string, error) {
	paths := PolicyPaths(cfg)
	if len(paths) == 0 {
		f, err := policy.ParseFile(EmbeddedPolicyName, policy.DefaultYAML)
		if err != nil {
			return nil, nil, err
		}
		set, err := policy.NewSet(f)
		return set, nil, err
	}
	files, err := policy.Expand(paths...)
	if err != nil {
		return nil, nil, err
	}
	set, err := policy.Load(paths...)
	return set, files, err
}

// policyWatch reloads the policies when a file changes or on SIGHUP; a
// reload that fails validation keeps the last good policy. Both outcomes
// are audited.
type policyWatch struct {
	rt     *Runtime
	reload chan struct{}
	mu     sync.Mutex
	stamps map[string]string
}

func (rt *Runtime) openPolicy(ctx context.Context, redactor *redact.Redactor) error {
	set, files, err := LoadPolicies(rt.Cfg)
	if err != nil {
		return fmt.Errorf("loading policies (nothing is served with a policy that does not validate):\n%w", err)
	}
	rt.Policy = policy.NewEngine(set, policy.Options{
		Counter: rt.store.counter(), Secrets: redactor, Clock: rt.opts.Now, Shadow: rt.Cfg.Governance.ShadowMode,
	})
	rt.policy = &policyWatch{rt: rt, reload: make(chan struct{}, 1)}
	rt.policy.stamps = stamps(files)
	return rt.auditPolicy(ctx, set, files, nil, false)
}

// ReloadPolicy asks for a reload (SIGHUP).
func (rt *Runtime) ReloadPolicy() {
	select {
	case rt.policy.reload <- struct{}{}:
	default:
	}
}

func (w *policyWatch) watch(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.reload:
			w.try(ctx, true)
		case <-tick.C:
			if w.rt.Cfg.Policies.Watch {
				w.try(ctx, false)
			}
		}
	}
}

func (w *policyWatch) try(ctx context.Context, forced bool) {
	paths := PolicyPaths(w.rt.Cfg)
	if len(paths) == 0 {
		return
	}
	files, _ := policy.Expand(paths...)
	now := stamps(files)
	if !forced && sameStamps(now, w.stamps) {
		return
	}
	w.stamps = now
	set, files, err := LoadPolicies(w.rt.Cfg)
	if err != nil {
		w.rt.warnf("policy reload failed, keeping the last good policy:\n%v", err)
		w.rt.auditPolicy(ctx, nil, files, err, true)
		return
	}
	w.rt.Policy.Replace(set)
	fmt.Fprintf(w.rt.opts.Stderr, "agentmesh: policies reloaded (%d rules)\n", len(set.Rules()))
	w.rt.auditPolicy(ctx, set, files, nil, true)
}

// stamps fingerprints files by content, so a rewrite with the same bytes
// does not count as a change.
func stamps(files []string) map[string]string {
	m := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			m[f] = "unreadable: " + err.Error()
			continue
		}
		sum := sha256.Sum256(b)
		m[f] = hex.EncodeToString(sum[:])
	}
	return m
}

func sameStamps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (rt *Runtime) auditPolicy(ctx context.Context, set *policy.Set, files []string, loadErr error, reload bool) error {
	d := map[string]any{"reload": reload, "files": stamps(files)}
	if !reload && loadErr == nil && rt.samePolicyAsLast(ctx, files) {
		return nil // a start with the policy last recorded: nothing new to say
	}
	e := audit.Entry{Agent: rt.ID.DID(), Action: audit.ActionPolicyLoaded}
	if len(files) == 0 {
		d["files"] = map[string]string{EmbeddedPolicyName: "embedded"}
	}
	if set != nil {
		d["rules"] = len(set.Rules())
	}
	if loadErr != nil {
		e.Reason = "reload failed validation; the last good policy stays in force"
		d["error"] = loadErr.Error()
	}
	e.Details = jsonDetails(d)
	fingerprint := ""
	if loadErr == nil {
		fingerprint = policyFingerprint(files)
	}
	return rt.store.recordPolicy(ctx, e, fingerprint)
}

// policyFingerprint names the policy in force by its files' contents.
func policyFingerprint(files []string) string {
	b, _ := json.Marshal(stamps(files))
	return string(b)
}

// samePolicyAsLast reports whether the last policy_loaded entry recorded
// exactly these files (the fingerprint is kept in meta beside the log).
func (rt *Runtime) samePolicyAsLast(ctx context.Context, files []string) bool {
	return rt.store.lastPolicy(ctx) == policyFingerprint(files)
}
