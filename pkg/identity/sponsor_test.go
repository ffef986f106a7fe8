package identity

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

func TestSetSponsorKeepsKeysAndHandovers(t *testing.T) {
	d := newState(t)
	if _, err := Create(d, CreateOptions{Name: "srv", Sponsor: "unset@example.invalid", Now: t0}); err != nil {
		t.Fatal(err)
	}
	// A rotated identity: the document carries a signed hand-over that
	// must still verify after the sponsor changes.
	rotated, _, err := Rotate(d, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keyBefore, _ := os.ReadFile(d.Join(state.IdentityKey))
	authBefore, _ := os.ReadFile(d.Join(state.AuthorityKey))

	id, previous, err := SetSponsor(d, "owner@company.com")
	if err != nil {
		t.Fatal(err)
	}
	if previous != "unset@example.invalid" {
		t.Errorf("previous = %q, want unset@example.invalid", previous)
	}
	if id.Doc.Sponsor != "owner@company.com" {
		t.Errorf("returned sponsor = %q", id.Doc.Sponsor)
	}
	if !id.Key.Equal(rotated.Key) || !id.Authority.Equal(rotated.Authority) {
		t.Error("SetSponsor returned other keys")
	}
	loaded, err := Load(d)
	if err != nil {
		t.Fatalf("Load after SetSponsor = %v", err)
	}
	if loaded.Doc.Sponsor != "owner@company.com" {
		t.Errorf("stored sponsor = %q", loaded.Doc.Sponsor)
	}
	if err := loaded.Doc.Verify(); err != nil {
		t.Errorf("the document no longer verifies: %v", err)
	}
	want := rotated.Doc
	want.Sponsor = "owner@company.com"
	if !reflect.DeepEqual(loaded.Doc, want) {
		t.Errorf("document = %+v\nwant only the sponsor changed: %+v", loaded.Doc, want)
	}
	keyAfter, _ := os.ReadFile(d.Join(state.IdentityKey))
	authAfter, _ := os.ReadFile(d.Join(state.AuthorityKey))
	if string(keyAfter) != string(keyBefore) || string(authAfter) != string(authBefore) {
		t.Error("SetSponsor rewrote a private key")
	}
	if st, err := os.Stat(d.Join(state.IdentityDoc)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity.json: %v, %v; want mode 0600", st, err)
	}

	// The same sponsor again changes nothing.
	docBefore, _ := os.ReadFile(d.Join(state.IdentityDoc))
	if _, previous, err := SetSponsor(d, "owner@company.com"); err != nil || previous != "owner@company.com" {
		t.Errorf("SetSponsor(same) = %q, %v", previous, err)
	}
	if docAfter, _ := os.ReadFile(d.Join(state.IdentityDoc)); string(docAfter) != string(docBefore) {
		t.Error("SetSponsor(same) rewrote identity.json")
	}
}

func TestSetSponsorRejects(t *testing.T) {
	d := newState(t)
	if _, _, err := SetSponsor(d, "owner@company.com"); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("SetSponsor without identity = %v, want ErrNoIdentity", err)
	}
	if _, err := Create(d, CreateOptions{Name: "srv", Sponsor: "a@b.com", Now: t0}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(d.Join(state.IdentityDoc))
	for _, bad := range []string{"", "not-an-address", "Owner <owner@company.com>", "owner@localhost"} {
		_, _, err := SetSponsor(d, bad)
		if err == nil || !strings.Contains(err.Error(), "sponsor") {
			t.Errorf("SetSponsor(%q) = %v, want a sponsor error", bad, err)
		}
	}
	if after, _ := os.ReadFile(d.Join(state.IdentityDoc)); string(after) != string(before) {
		t.Error("a rejected sponsor changed identity.json")
	}
	// Without the private keys (someone else's identity) nothing changes.
	os.Chmod(d.Join(state.IdentityKey), 0o644)
	if _, _, err := SetSponsor(d, "owner@company.com"); !errors.Is(err, state.ErrInsecureKey) {
		t.Errorf("SetSponsor with an unusable key = %v, want ErrInsecureKey", err)
	}
	if after, _ := os.ReadFile(d.Join(state.IdentityDoc)); string(after) != string(before) {
		t.Error("SetSponsor changed identity.json although the keys could not be loaded")
	}
}
