package compliance

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryControl keeps docs/compliance.md in step with the
// catalogue: a row per control, with its title, reference and every piece
// of its evidence.
func TestDocsListEveryControl(t *testing.T) {
	b, err := os.ReadFile("../../docs/compliance.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `") {
			id := strings.SplitN(line[3:], "`", 2)[0]
			rows[id] = line
		}
	}
	for _, c := range Catalogue {
		row, ok := rows[c.ID]
		if !ok {
			t.Errorf("docs/compliance.md has no row for %s", c.ID)
			continue
		}
		if !strings.Contains(row, c.Title) || !strings.Contains(row, c.Ref) {
			t.Errorf("%s: the row lacks its title %q or reference %q", c.ID, c.Title, c.Ref)
		}
		for _, e := range c.Evidence {
			if !strings.Contains(row, "`"+e.ID+"`") {
				t.Errorf("%s: the row does not name evidence %s", c.ID, e.ID)
			}
			if e.Required != strings.Contains(row, "`"+e.ID+"` ★") {
				t.Errorf("%s: the row marks evidence %s required: %v, the catalogue %v", c.ID, e.ID, !e.Required, e.Required)
			}
		}
		if c.Verification && !strings.Contains(row, "verification runs ★") {
			t.Errorf("%s: the row does not say it requires a verification", c.ID)
		}
	}
}
