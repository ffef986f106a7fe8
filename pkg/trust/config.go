package trust

import "github.com/agentmesh/agentmesh/pkg/config"

// FromConfig returns the model agentmesh.yaml's trust section describes.
func FromConfig(c config.Trust) Model {
	return Model{
		Initial:         c.Initial,
		RevokeBelow:     c.RevokeBelow,
		RecoveryAfter:   c.RecoveryAfter.D(),
		RecoveryPerHour: c.RecoveryPerHour,
		Tiers:           c.Tiers,
	}
}
