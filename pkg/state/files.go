package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/agentmesh/agentmesh/pkg/internal/filemode"
)

// ErrExists is returned when a file that must be created fresh exists.
var ErrExists = fs.ErrExist

// CreateExclusive writes a new file with mode 0600, failing if it exists
// (O_EXCL), and syncs it and its directory. Keys are written this way so a
// race between two processes can never leave one process with a key the
// other overwrote.
func CreateExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// WriteFileAtomic replaces path with data (mode 0600) so that readers see
// either the old or the new content, never a mix: write a temporary file in
// the same directory, fsync, rename, fsync the directory.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// ErrInsecureKey means a key file is readable by group or others.
var ErrInsecureKey = errors.New("key file is accessible by others")

// ReadSecret reads a key file, refusing it (like ssh) when group or others
// have any access to it, or when it is not a regular file.
func ReadSecret(path string) ([]byte, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file (symlinks are refused)", path)
	}
	if !filemode.OwnerOnly(st) {
		return nil, fmt.Errorf("%w: %s has mode %04o; a private key must be readable by its owner only: run chmod 600 %s",
			ErrInsecureKey, path, st.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// RetireDatabase moves the database (and its -wal and -shm files) to
// retired/<time>-agentmesh.db, so a replaced identity starts a new audit log
// while the old one is kept. Stop every agentmesh process using the state
// directory first.
func RetireDatabase(d *Dir, now time.Time) error {
	src := d.Join(DatabaseFile)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	dir := d.Join(RetiredDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("retiring the database: %w", err)
	}
	dst, err := reserveName(dir, now.UTC().Format("20060102T150405Z"), DatabaseFile)
	if err != nil {
		return fmt.Errorf("retiring the database: %w", err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(src+suffix, dst+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("retiring the database: %w", err)
		}
	}
	return nil
}

// reserveName creates an empty file dir/STAMP-NAME (dir/STAMP.2-NAME, ...
// when taken) with O_EXCL and returns its path, so that two retirements
// in the same second never rename onto the same file.
func reserveName(dir, stamp, name string) (string, error) {
	for i := 1; i <= 1000; i++ {
		base := stamp
		if i > 1 {
			base = fmt.Sprintf("%s.%d", stamp, i)
		}
		p := filepath.Join(dir, base+"-"+name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return p, f.Close()
	}
	return "", fmt.Errorf("%s: no free name for %s after 1000 tries", dir, name)
}
