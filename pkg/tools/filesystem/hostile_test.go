package filesystem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// attack is one hostile call. want is the refusal check expected, "error"
// for a benign look-alike that fails as an ordinary error (nothing there),
// or "ok" for one that must work.
type attack struct {
	name  string
	tool  string // read, list, write
	path  string // "{data}" is replaced by the host path of the /data root
	setup func(t *testing.T, fx *fixture)
	want  string
}

// passwdMarker is what /etc/passwd starts with on every Unix.
const passwdMarker = "root:x:0:0"

var attacks = []attack{
	// ".." in many spellings.
	{name: "dotdot_etc_passwd", tool: "read", path: "/data/../etc/passwd", want: "traversal"},
	{name: "dot_dotdot_dotdot", tool: "read", path: "/data/./../..", want: "traversal"},
	{name: "nested_dotdot_etc", tool: "read", path: "/data/a/../../etc", want: "traversal"},
	{name: "dotdot_reenter_mount", tool: "read", path: "/data/../data/users.json", want: "traversal"},
	{name: "dotdot_to_other_mount", tool: "read", path: "/database/../data/users.json", want: "traversal"},
	{name: "trailing_dotdot", tool: "list", path: "/data/..", want: "traversal"},
	{name: "trailing_dotdot_slash", tool: "list", path: "/data/../", want: "traversal"},
	{name: "many_dotdots", tool: "read", path: "/data" + strings.Repeat("/..", 40) + "/etc/passwd", want: "traversal"},
	{name: "dotdot_canary", tool: "read", path: "/data/../outside/secret.txt", want: "traversal"},
	{name: "write_dotdot_outside", tool: "write", path: "/data/../outside/pwned.txt", want: "traversal"},
	// Encodings are literal names, never decoded: nothing there.
	{name: "percent_encoded_slash", tool: "read", path: "/data/..%2f..%2fetc", want: "error"},
	{name: "percent_encoded_passwd", tool: "read", path: "/data/..%2f..%2f..%2fetc%2fpasswd", want: "error"},
	{name: "percent_encoded_dots", tool: "read", path: "/data/%2e%2e/%2e%2e/etc/passwd", want: "traversal"},
	{name: "double_percent_encoded", tool: "read", path: "/data/%252e%252e%252fetc%252fpasswd", want: "error"},
	{name: "four_dots_double_slash", tool: "read", path: "/data/....//", want: "error"},
	{name: "unicode_two_dot_leader", tool: "read", path: "/data/\u2025/etc/passwd", want: "error"},
	{name: "fullwidth_dots", tool: "read", path: "/data/\uff0e\uff0e/\uff0e\uff0e/etc/passwd", want: "error"},
	{name: "overlong_utf8_dot", tool: "read", path: "/data/\xc0\xae\xc0\xae/etc/passwd", want: "path"},
	// Absolute host paths are not virtual paths.
	{name: "absolute_etc_passwd", tool: "read", path: "/etc/passwd", want: "root"},
	{name: "absolute_etc_hosts", tool: "read", path: "/etc/hosts", want: "root"},
	{name: "host_path_of_root", tool: "read", path: "{data}/users.json", want: "root"},
	{name: "list_root_shows_mounts_only", tool: "list", path: "/", want: "ok"},
	{name: "relative_path", tool: "read", path: "data/users.json", want: "path"},
	{name: "relative_dotdot", tool: "read", path: "../etc/passwd", want: "traversal"},
	{name: "proc_self_root", tool: "read", path: "/proc/self/root/etc/passwd", want: "root"},
	{name: "proc_self_cwd", tool: "list", path: "/proc/self/cwd", want: "root"},
	{name: "proc_self_environ", tool: "read", path: "/proc/self/environ", want: "root"},
	// Symbolic links out of the root.
	{name: "file_symlink_etc_passwd", tool: "read", path: "/data/passwd", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "/etc/passwd", filepath.Join(fx.data, "passwd")) }},
	{name: "file_symlink_canary_absolute", tool: "read", path: "/data/secret", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, fx.canaryPath, filepath.Join(fx.data, "secret")) }},
	{name: "file_symlink_canary_relative", tool: "read", path: "/data/secret", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, "../outside/secret.txt", filepath.Join(fx.data, "secret"))
		}},
	{name: "dir_symlink_to_slash", tool: "read", path: "/data/rootfs/etc/passwd", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "/", filepath.Join(fx.data, "rootfs")) }},
	{name: "list_dir_symlink_to_slash", tool: "list", path: "/data/rootfs", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "/", filepath.Join(fx.data, "rootfs")) }},
	{name: "relative_symlink_up_three", tool: "read", path: "/data/up/etc/passwd", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "../../..", filepath.Join(fx.data, "up")) }},
	{name: "nested_relative_symlink_to_canary", tool: "read", path: "/data/a/b/leak", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, "../../../outside/secret.txt", filepath.Join(fx.data, "a", "b", "leak"))
		}},
	{name: "symlink_chain_out", tool: "read", path: "/data/one", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, "two", filepath.Join(fx.data, "one"))
			symlink(t, "sub/three", filepath.Join(fx.data, "two"))
			symlink(t, "../../outside/secret.txt", filepath.Join(fx.data, "sub", "three"))
		}},
	{name: "symlink_loop", tool: "read", path: "/data/loop1", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, "loop2", filepath.Join(fx.data, "loop1"))
			symlink(t, "loop1", filepath.Join(fx.data, "loop2"))
		}},
	{name: "symlink_to_proc_self_root", tool: "read", path: "/data/proc/etc/passwd", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "/proc/self/root", filepath.Join(fx.data, "proc")) }},
	{name: "symlink_to_dev_zero", tool: "read", path: "/data/zero", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "/dev/zero", filepath.Join(fx.data, "zero")) }},
	{name: "symlink_to_other_mount", tool: "read", path: "/data/ro-link", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, "../ro/readme.txt", filepath.Join(fx.data, "ro-link"))
		}},
	// Hard links are escapes that paths cannot see.
	{name: "hardlink_to_canary", tool: "read", path: "/data/hard.txt", want: "hardlink",
		setup: func(t *testing.T, fx *fixture) { hardlink(t, fx.canaryPath, filepath.Join(fx.data, "hard.txt")) }},
	{name: "write_over_hardlink_to_canary", tool: "write", path: "/data/hard.txt", want: "hardlink",
		setup: func(t *testing.T, fx *fixture) { hardlink(t, fx.canaryPath, filepath.Join(fx.data, "hard.txt")) }},
	// Lengths.
	{name: "component_300_chars", tool: "read", path: "/data/" + strings.Repeat("a", 300), want: "path"},
	{name: "path_5000_chars", tool: "read", path: "/data" + strings.Repeat("/abcd", 1000), want: "path"},
	// Bytes that are not path characters.
	{name: "nul_byte", tool: "read", path: "/data/users.json\x00.txt", want: "traversal"},
	{name: "nul_byte_dotdot", tool: "read", path: "/data/\x00/../../etc/passwd", want: "traversal"},
	{name: "newline", tool: "read", path: "/data/users.json\n/etc/passwd", want: "path"},
	{name: "escape_sequence", tool: "read", path: "/data/\x1b[2Jusers.json", want: "path"},
	{name: "invalid_utf8", tool: "read", path: "/data/\xff\xfe", want: "path"},
	{name: "empty_path", tool: "read", path: "", want: "path"},
	// Windows spellings.
	{name: "windows_backslashes", tool: "read", path: `\data\..\..\etc`, want: "traversal"},
	{name: "windows_drive", tool: "read", path: `C:\Windows\win.ini`, want: "path"},
	{name: "windows_mixed_separators", tool: "read", path: `/data\..\..\etc\passwd`, want: "traversal"},
	{name: "windows_unc", tool: "read", path: `\\server\share\x`, want: "traversal"},
	// Prefix confusion: /data never matches /database or /datab.
	{name: "prefix_database_is_own_mount", tool: "read", path: "/database/only-in-data.txt", want: "error"},
	{name: "prefix_datab", tool: "read", path: "/datab/users.json", want: "root"},
	{name: "prefix_data_suffix", tool: "read", path: "/data2/users.json", want: "root"},
	// Blocked globs, on the path asked for and on where a link leads.
	{name: "blocked_ssh_key", tool: "read", path: "/data/.ssh/id_rsa", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) { writeFile(t, filepath.Join(fx.data, ".ssh", "id_rsa"), "KEY") }},
	{name: "blocked_env_nested", tool: "read", path: "/data/sub/.env", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) { writeFile(t, filepath.Join(fx.data, "sub", ".env"), "X=1") }},
	{name: "blocked_env_uppercase", tool: "read", path: "/data/.ENV", want: "blocked-glob"},
	{name: "blocked_pem", tool: "read", path: "/data/certs/server.pem", want: "blocked-glob"},
	{name: "blocked_list_ssh", tool: "list", path: "/data/.ssh", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) { writeFile(t, filepath.Join(fx.data, ".ssh", "id_rsa"), "KEY") }},
	{name: "blocked_via_inner_symlink", tool: "read", path: "/data/innocent.txt", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) {
			writeFile(t, filepath.Join(fx.data, ".ssh", "id_rsa"), "KEY")
			symlink(t, ".ssh/id_rsa", filepath.Join(fx.data, "innocent.txt"))
		}},
	{name: "blocked_via_dir_symlink", tool: "read", path: "/data/keys/known_hosts", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) {
			writeFile(t, filepath.Join(fx.data, ".ssh", "known_hosts"), "KEY")
			symlink(t, ".ssh", filepath.Join(fx.data, "keys"))
		}},
	{name: "blocked_dotdot_spelling", tool: "read", path: "/data/x/../.env", want: "blocked-glob"},
	{name: "write_blocked_env", tool: "write", path: "/data/.env", want: "blocked-glob"},
	{name: "write_via_dir_symlink_into_ssh", tool: "write", path: "/data/keys/authorized_keys", want: "blocked-glob",
		setup: func(t *testing.T, fx *fixture) {
			mkdir(t, filepath.Join(fx.data, ".ssh"))
			symlink(t, ".ssh", filepath.Join(fx.data, "keys"))
		}},
	// Writes.
	{name: "write_read_only_root", tool: "write", path: "/ro/pwned.txt", want: "root"},
	{name: "write_read_only_existing", tool: "write", path: "/ro/readme.txt", want: "root"},
	{name: "write_through_symlinked_dir", tool: "write", path: "/data/out/pwned.txt", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, fx.outside, filepath.Join(fx.data, "out")) }},
	{name: "write_through_relative_symlinked_dir", tool: "write", path: "/data/out/pwned.txt", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "../outside", filepath.Join(fx.data, "out")) }},
	{name: "write_create_dirs_through_symlink", tool: "write", path: "/data/out/new/pwned.txt", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, "../outside", filepath.Join(fx.data, "out")) }},
	{name: "write_over_symlink_to_canary", tool: "write", path: "/data/link.txt", want: "symlink",
		setup: func(t *testing.T, fx *fixture) { symlink(t, fx.canaryPath, filepath.Join(fx.data, "link.txt")) }},
	{name: "write_over_dangling_symlink", tool: "write", path: "/data/dangling", want: "symlink",
		setup: func(t *testing.T, fx *fixture) {
			symlink(t, filepath.Join(fx.outside, "new.txt"), filepath.Join(fx.data, "dangling"))
		}},
	{name: "write_mount_point", tool: "write", path: "/data", want: "path"},
	{name: "write_host_path", tool: "write", path: "{data}/pwned.txt", want: "root"},
	// Special files.
	{name: "fifo_read", tool: "read", path: "/data/fifo", want: "special-file", setup: mkfifo},
	{name: "fifo_list", tool: "list", path: "/data/fifo", want: "error", setup: mkfifo},
	{name: "fifo_write", tool: "write", path: "/data/fifo", want: "special-file", setup: mkfifo},
	{name: "fifo_as_parent", tool: "write", path: "/data/fifo/x", want: "error", setup: mkfifo},
	// Limits.
	{name: "read_too_large", tool: "read", path: "/data/big.txt", want: "size",
		setup: func(t *testing.T, fx *fixture) {
			writeFile(t, filepath.Join(fx.data, "big.txt"), strings.Repeat("x", 64<<10+1))
		}},
	{name: "binary_content", tool: "read", path: "/data/blob.bin", want: "binary",
		setup: func(t *testing.T, fx *fixture) { writeFile(t, filepath.Join(fx.data, "blob.bin"), "\x00\x01\xff") }},
}

func hardlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Link(oldname, newname); err != nil {
		t.Skipf("hard links not supported here: %v", err)
	}
}

func mkfifo(t *testing.T, fx *fixture) {
	t.Helper()
	if err := makeFIFO(filepath.Join(fx.data, "fifo")); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// TestHostilePaths runs every attack against a fresh tree and checks that
// nothing escapes: the expected refusal (or a plain "not found" for
// look-alikes), the canary never in any result or error, /etc/passwd never
// read, no host path in any message, nothing outside the mounts created or
// changed.
func TestHostilePaths(t *testing.T) {
	if len(attacks) < 25 {
		t.Fatalf("the hostile suite must keep at least 25 path attacks, has %d", len(attacks))
	}
	seen := map[string]bool{}
	for _, a := range attacks {
		if seen[a.name] {
			t.Fatalf("duplicate attack name %s", a.name)
		}
		seen[a.name] = true
	}
	for _, mode := range resolveModes {
		for _, a := range attacks {
			t.Run(mode.name+"/"+a.name, func(t *testing.T) {
				fx := newFixture(t)
				mode.apply(fx)
				runAttack(t, fx, a)
			})
		}
	}
}

// resolveModes are the two ways resolved finds where an open file is: the
// kernel's descriptor path (Linux) and the walk through the root (other
// systems, and the fallback).
var resolveModes = []struct {
	name  string
	apply func(*fixture)
}{
	{"descriptor", func(*fixture) {}},
	{"walk", func(fx *fixture) {
		for _, m := range fx.fs.mounts {
			m.real = ""
		}
	}},
}

func runAttack(t *testing.T, fx *fixture, a attack) {
	t.Helper()
	if a.setup != nil {
		a.setup(t, fx)
	}
	args := map[string]any{"path": strings.ReplaceAll(a.path, "{data}", fx.data)}
	tool := map[string]toolT{"read": fx.read, "list": fx.list, "write": fx.write}[a.tool]
	if a.tool == "write" {
		args["content"] = "PWNED"
		args["create_dirs"] = true
	}
	o := runWithDeadline(t, tool, args)
	t.Logf("%s %q: %s", a.tool, args["path"], strings.TrimSpace(o.text()))
	assertOutcome(t, o, a.want)
	assertNoEscape(t, fx, o)
}

func assertOutcome(t *testing.T, o outcome, want string) {
	t.Helper()
	r := o.refusal()
	switch want {
	case "ok":
		if o.err != nil || o.accessErr != nil {
			t.Fatalf("want success, got access error %v, call error %v", o.accessErr, o.err)
		}
	case "error":
		if o.err == nil || r != nil || o.res != nil {
			t.Fatalf("want a plain error, got result %v, error %v (refusal %v)", o.res != nil, o.err, r)
		}
	default:
		if r == nil || r.Check != want || o.res != nil {
			t.Fatalf("want refusal %q, got result %v, access error %v, call error %v", want, o.res != nil, o.accessErr, o.err)
		}
	}
}

func assertNoEscape(t *testing.T, fx *fixture, o outcome) {
	t.Helper()
	text := o.text()
	if strings.Contains(text, fx.canary) {
		t.Fatalf("ESCAPE: the canary appeared in the output: %q", text)
	}
	if strings.Contains(text, passwdMarker) {
		t.Fatalf("ESCAPE: /etc/passwd appeared in the output")
	}
	if strings.Contains(text, fx.base) {
		t.Fatalf("a host path appeared in the output: %q", text)
	}
	if got, err := os.ReadFile(fx.canaryPath); err != nil || string(got) != fx.canary {
		t.Fatalf("ESCAPE: the canary file changed: %q, %v", got, err)
	}
	entries, err := os.ReadDir(fx.outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret.txt" {
		t.Fatalf("ESCAPE: something was created outside the roots: %v", entries)
	}
}
