package trust

import "github.com/agentmesh/agentmesh/pkg/config"

// FromConfig returns the model agentmesh.yaml's trust section describes.
func FromConfig(c config.Trust) Model {
	w := c.Weights
	return Model{
		Initial:         c.Initial,
		RevokeBelow:     c.RevokeBelow,
		RecoveryAfter:   c.RecoveryAfter.D(),
		RecoveryPerHour: c.RecoveryPerHour,
		Tiers:           c.Tiers,
		Weights: Weights{Allowed: w.Allowed, Mistake: w.Mistake, Attack: w.Attack, RateLimited: w.RateLimited,
			CredentialFailure: w.CredentialFailure, Policy: map[string]int{"low": w.Policy.Low, "medium": w.Policy.Medium, "high": w.Policy.High, "critical": w.Policy.Critical}},
		RepeatWindow:          c.RepeatWindow.D(),
		DailyGainAboveInitial: c.DailyGainAboveInitial,
	}
}
