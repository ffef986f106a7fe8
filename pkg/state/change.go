package state

import (
	"encoding/binary"
	"os"
	"sync"
)

// ChangeToken is a value that differs after any connection, in this
// process or another, commits a write to the database.
type ChangeToken [walIndexHeaderSize]byte

// walIndexHeaderSize is the size of one copy of the WAL-index header.
const walIndexHeaderSize = 48

// shm is the database's WAL-index file, opened on first use.
type shm struct {
	once sync.Once
	f    *os.File
}

// ChangeToken reads the first copy of the WAL-index header from the "-shm"
// file (https://www.sqlite.org/walformat.html, "The WAL-Index Header"):
// its iChange counter is incremented by every committed transaction,
// mxFrame moves with every commit, and the salts change whenever the WAL
// restarts. SQLite maps that file shared, so a read sees every connection's
// commits. ok is false when the file cannot be read; callers must then read
// the database itself. A token read while a writer updates the header may
// be a mix of old and new bytes: it then differs from every earlier token,
// which costs a read, never a stale answer.
func (db *DB) ChangeToken() (token ChangeToken, ok bool) {
	db.shm.once.Do(func() {
		db.shm.f, _ = os.Open(db.Path + "-shm")
	})
	if db.shm.f == nil {
		return token, false
	}
	n, err := db.shm.f.ReadAt(token[:], 0)
	return token, err == nil && n == len(token)
}

// transactions is the header's iChange: "incremented with each
// transaction" (https://www.sqlite.org/walformat.html), at byte offset 8,
// in the machine's byte order (the WAL-index is native-endian).
func (t ChangeToken) transactions() uint32 { return binary.NativeEndian.Uint32(t[8:12]) }
