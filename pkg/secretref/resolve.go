package secretref

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/internal/filemode"
)

// MaxFileBytes bounds a ${file:PATH} secret: a larger file is refused (it
// is almost certainly the wrong file).
const MaxFileBytes = 64 << 10

// Resolver resolves references against an environment and a filesystem.
type Resolver struct {
	// Getenv reads an environment variable ("" when unset).
	Getenv func(string) string
	// Dir is the directory relative file paths are taken from (the
	// configuration file's).
	Dir string
	// Home is the home directory "~/" expands to; "" refuses such paths.
	Home string
}

// OS is a Resolver reading the process's environment and home directory,
// with relative paths taken from dir.
func OS(dir string) Resolver {
	home, _ := os.UserHomeDir()
	return Resolver{Getenv: os.Getenv, Dir: dir, Home: home}
}

// Resolve returns a reference's value. Errors begin with the reference
// and never contain the value.
func (r Resolver) Resolve(ref Ref) (string, error) {
	switch ref.Scheme {
	case Env:
		v := ""
		if r.Getenv != nil {
			v = r.Getenv(ref.Arg)
		}
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set (or empty)", ref, ref.Arg)
		}
		return v, nil
	case File:
		p, err := r.Path(ref)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		v, err := ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		return v, nil
	}
	return "", fmt.Errorf("%s: unknown scheme", ref)
}

// Path is the absolute path a file reference names.
func (r Resolver) Path(ref Ref) (string, error) {
	p := ref.Arg
	if p == "~" || strings.HasPrefix(p, "~/") {
		if r.Home == "" {
			return "", errors.New("~ cannot be expanded: no home directory is known (set HOME)")
		}
		p = filepath.Join(r.Home, p[1:])
	}
	if !filepath.IsAbs(p) {
		if r.Dir == "" {
			return "", errors.New("a relative path needs the configuration file's directory")
		}
		p = filepath.Join(r.Dir, p)
	}
	return filepath.Clean(p), nil
}

// ErrInsecureFile means a secret file may be read or written by group or
// others.
var ErrInsecureFile = errors.New("secret file is accessible by others")

// ReadFile reads a secret file: a regular file (symlinks are followed, so a
// Kubernetes secret volume works) that only its owner may access, of at
// most MaxFileBytes, not empty. One trailing newline ("\n" or "\r\n") is
// removed, as editors and `echo` add one.
func ReadFile(path string) (string, error) {
	// Stat before opening: opening a FIFO would block.
	if st, err := os.Stat(path); err != nil {
		return "", pathError(path, err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", pathError(path, err)
	}
	defer f.Close()
	// Stat the open file: what is checked is what is read.
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if !filemode.OwnerOnly(st) {
		return "", fmt.Errorf("%w: %s has mode %04o; a secret file must be accessible by its owner only: run chmod 600 %s",
			ErrInsecureFile, path, st.Mode().Perm(), path)
	}
	if st.Size() > MaxFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: a secret file holds one credential", path, MaxFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: a secret file holds one credential", path, MaxFileBytes)
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// pathError says what went wrong with path once (fs.PathError repeats the
// operation and the path).
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", path, pe.Err)
	}
	return err
}
