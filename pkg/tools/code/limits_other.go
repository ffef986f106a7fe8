//go:build !unix

package code

// applyLimits sets nothing where there are no rlimits (Windows): the
// parent's wall-clock timeout, the step budget and the output cap remain.
func applyLimits(request) ([]string, <-chan struct{}, error) { return nil, nil, nil }
