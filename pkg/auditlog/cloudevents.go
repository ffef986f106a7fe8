package auditlog

import (
	"encoding/json"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Event is a CloudEvents 1.0 event in structured-mode JSON
// (https://github.com/cloudevents/spec, JSON format).
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// CloudEvent wraps a stored entry: the data is the canonical entry, byte
// for byte, so a SIEM can still hash it against the log.
func CloudEvent(origin string, s Stored) Event {
	return Event{
		SpecVersion:     "1.0",
		ID:              fmt.Sprintf("%s/%d", origin, s.Entry.Seq),
		Source:          "agentmesh:" + origin,
		Type:            "dev.agentmesh.audit." + string(s.Entry.Action),
		Subject:         s.Entry.Tool,
		Time:            audit.FormatTimestamp(s.Entry.Timestamp),
		DataContentType: "application/json",
		Data:            s.Raw,
	}
}

// MarshalJSON encodes the event without HTML escaping.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(plain(e))
}
