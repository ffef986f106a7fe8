// Package state owns the state directory: its layout, the permissions of
// everything in it, and the SQLite database every agentmesh process shares.
//
// Layout (DESIGN.md, "Configuration and state"):
//
//	STATE/                 0700
//	  keys/                0700
//	    identity.pem       0600  Ed25519 identity key (PKCS#8 PEM)
//	    authority.pem      0600  Ed25519 credential authority key
//	    retired/           0700  rotated-out identity keys
//	  identity.json        0600  the identity document (DID, sponsor, key history)
//	  credential.jws       0600  the current credential
//	  agentmesh.db         0600  SQLite (WAL): audit log, trust, rate limits, pins
//	  retired/             0700  databases of identities replaced with --force
//
// Like ssh, agentmesh refuses to use a key file that group or others can
// read, and a state directory that group or others can write.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Names inside the state directory.
const (
	KeysDir        = "keys"
	IdentityKey    = "keys/identity.pem"
	AuthorityKey   = "keys/authority.pem"
	RetiredKeysDir = "keys/retired"
	IdentityDoc    = "identity.json"
	CredentialFile = "credential.jws"
	DatabaseFile   = "agentmesh.db"
	RetiredDir     = "retired"
)

// Dir is a state directory.
type Dir struct {
	// Path is absolute.
	Path string
}

// ErrNoState means the state directory does not exist yet.
var ErrNoState = errors.New("no state directory")

// Create makes the state directory and its layout (0700) if they do not
// exist, and checks their permissions if they do.
func Create(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	d := &Dir{Path: abs}
	for _, sub := range []string{"", KeysDir, RetiredKeysDir} {
		p := d.Join(sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("creating state directory %s: %w", p, err)
		}
		if err := checkDirMode(p); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Open opens an existing state directory; it returns an error wrapping
// ErrNoState when there is none, with a hint to run `agentmesh init`.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: run `agentmesh init` or `agentmesh identity create` first, or pass --state-dir", ErrNoState, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("state directory %s is not a directory", abs)
	}
	if err := checkDirMode(abs); err != nil {
		return nil, err
	}
	return &Dir{Path: abs}, nil
}

// Join returns the absolute path of a name inside the state directory.
func (d *Dir) Join(name string) string {
	return filepath.Join(d.Path, filepath.FromSlash(name))
}

// checkDirMode refuses directories that group or others may write: anyone
// who can write there can replace keys or the database.
func checkDirMode(p string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", p, err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state directory %s is writable by group or others (mode %04o); run: chmod 700 %s", p, st.Mode().Perm(), p)
	}
	return nil
}
