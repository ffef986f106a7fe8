package identity

import (
	"bytes"
	"fmt"
	"os"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// SetSponsor changes the sponsor named in identity.json and returns the
// identity with the new sponsor and the sponsor it replaced. The keys stay
// as they are, and so does everything they signed: the sponsor is not part
// of any hand-over statement, so the document still verifies. Setting the
// sponsor the document already names changes nothing (previous == sponsor).
//
// The document is replaced atomically, and only if nothing else (a
// concurrent rotation) changed it since it was read.
func SetSponsor(d *state.Dir, sponsor string) (id *Identity, previous string, err error) {
	if err := ValidSponsor(sponsor); err != nil {
		return nil, "", err
	}
	p := d.Join(state.IdentityDoc)
	before, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return nil, "", err
	}
	// Load verifies the document and that this user holds the keys that
	// match it: only the owner of the identity changes its sponsor.
	id, err = Load(d)
	if err != nil {
		return nil, "", err
	}
	previous = id.Doc.Sponsor
	if previous == sponsor {
		return id, previous, nil
	}
	doc := id.Doc
	doc.Sponsor = sponsor
	if err := doc.Verify(); err != nil {
		return nil, "", fmt.Errorf("setting the sponsor: %w", err)
	}
	now, err := os.ReadFile(p)
	if err != nil {
		return nil, "", err
	}
	if !bytes.Equal(before, now) {
		return nil, "", fmt.Errorf("%s changed while the sponsor was being set (another agentmesh command, such as identity rotate?): run this again", p)
	}
	if err := writeDoc(p, &doc); err != nil {
		return nil, "", fmt.Errorf("writing %s: %w", p, err)
	}
	id.Doc = doc
	return id, previous, nil
}
