//go:build race

package mcpserver

// raceEnabled: the race detector's shadow memory makes RSS no measure.
const raceEnabled = true
