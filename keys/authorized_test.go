package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// secureTempDir returns a new directory, removed after the test, whose
// path up to / passes the StrictModes check for root: t.TempDir() does not,
// because /tmp is writable by everyone.
func secureTempDir(t *testing.T) string {
	t.Helper()
	var candidates []string
	if d, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, d)
	}
	if d, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, d)
	}
	for _, base := range candidates {
		dir, err := os.MkdirTemp(base, "keys-test-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := checkSecureDirs(dir, os.Geteuid(), ""); err != nil {
			t.Logf("%s: %v", base, err)
			continue
		}
		return dir
	}
	t.Skipf("no directory with a StrictModes-safe path to / among %q: LoadAuthorized NOT tested", candidates)
	return ""
}

// needRoot skips tests that chown files to other users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot chown test files to other users; StrictModes ownership NOT tested")
	}
}

func authorizedLine(t *testing.T, pub ed25519.PublicKey, comment string) string {
	t.Helper()
	return strings.TrimSuffix(string(MarshalAuthorizedKey(pub, comment)), "\n")
}

func TestLoadAuthorized(t *testing.T) {
	dir := secureTempDir(t)
	var pubs []ed25519.PublicKey
	for range 12 {
		pubs = append(pubs, publicOf(newKey(t)))
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob := func(p ed25519.PublicKey) string {
		return base64.StdEncoding.EncodeToString(mustSSHPub(t, p).Marshal())
	}

	lines := []string{
		/* 1 */ "# comment " + authorizedLine(t, pubs[9], ""),
		/* 2 */ "",
		/* 3 */ authorizedLine(t, pubs[0], "alice@laptop"),
		/* 4 */ "   " + authorizedLine(t, pubs[1], "") + "  ",
		/* 5 */ authorizedLine(t, pubs[2], "crlf") + "\r",
		/* 6 */ `from="10.0.0.1" ` + authorizedLine(t, pubs[3], ""),
		/* 7 */ `command="/bin/true",no-pty ` + authorizedLine(t, pubs[4], ""),
		/* 8 */ "restrict " + authorizedLine(t, pubs[5], ""),
		/* 9 */ "cert-authority " + authorizedLine(t, pubs[6], ""),
		/* 10 */ strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ecPub))),
		/* 11 */ "garbage that is not a key",
		/* 12 */ "ssh-rsa " + blob(pubs[7]), // declared type does not match the blob
		/* 13 */ "ssh-ed25519 " + blob(pubs[8]) + " " + strings.Repeat("x", maxAuthorizedLine),
		/* 14 */ "\t# indented comment",
		/* 15 */ `environment="A=\x1b[2J" ` + authorizedLine(t, pubs[10], ""),
		/* 16 */ "ssh-ed25519 " + blob(pubs[11]) + " last line without newline",
	}
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAuthorized(path, os.Geteuid(), "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Path != path {
		t.Errorf("Path = %q", a.Path)
	}

	allowed := map[int]bool{0: true, 1: true, 2: true, 11: true}
	for i, p := range pubs {
		if got := a.Allows(p); got != allowed[i] {
			t.Errorf("Allows(pubs[%d]) = %v, want %v", i, got, allowed[i])
		}
	}
	if got := len(a.Keys()); got != len(allowed) {
		t.Errorf("%d keys, want %d", got, len(allowed))
	}

	wantSkipped := []Skipped{
		{8, "key option restrict is not supported (rlogind enforces command=, from= and no-pty)"},
		{9, "key option cert-authority is not supported (rlogind enforces command=, from= and no-pty)"},
		{10, "key type ecdsa-sha2-nistp256 is not supported (only ssh-ed25519)"},
		{11, "malformed line or unknown key type"},
		{12, "malformed line or unknown key type"},
		{13, fmt.Sprintf("line longer than %d bytes", maxAuthorizedLine)},
		{15, "key option environment is not supported (rlogind enforces command=, from= and no-pty)"},
	}
	if fmt.Sprint(a.Skipped) != fmt.Sprint(wantSkipped) {
		t.Errorf("Skipped:\n got  %v\n want %v", a.Skipped, wantSkipped)
	}

	// Lines 6 and 7 authorize through Permit, with their options.
	from := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1023}
	other := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 1023}
	if opts, ok := a.Permit(pubs[3], from); !ok || opts != (KeyOptions{From: "10.0.0.1"}) {
		t.Errorf("Permit(pubs[3], %v) = %+v, %v", from, opts, ok)
	}
	if _, ok := a.Permit(pubs[3], other); ok {
		t.Errorf("Permit(pubs[3], %v) allowed a client outside from=", other)
	}
	if opts, ok := a.Permit(pubs[4], other); !ok || opts != (KeyOptions{Command: "/bin/true", NoPTY: true}) {
		t.Errorf("Permit(pubs[4]) = %+v, %v", opts, ok)
	}
	if opts, ok := a.Permit(pubs[0], other); !ok || opts != (KeyOptions{}) {
		t.Errorf("Permit(pubs[0]) = %+v, %v", opts, ok)
	}
	for _, i := range []int{5, 6, 10} {
		if _, ok := a.Permit(pubs[i], other); ok {
			t.Errorf("Permit(pubs[%d]) allowed a line with an option rlogind does not enforce", i)
		}
	}
}

// TestLoadAuthorizedSSHKeygenKeys feeds LoadAuthorized public keys written
// by OpenSSH's ssh-keygen.
func TestLoadAuthorizedSSHKeygenKeys(t *testing.T) {
	dir := secureTempDir(t)
	var content bytes.Buffer
	var want []ed25519.PublicKey
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("k%d", i))
		sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", fmt.Sprintf("user%d@host", i), "-f", p)
		pubData, err := os.ReadFile(p + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		content.Write(pubData)
		k, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, publicOf(k))
	}
	rsa := filepath.Join(dir, "rsa")
	sshKeygen(t, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa)
	rsaPub, err := os.ReadFile(rsa + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	content.Write(rsaPub)
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, content.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAuthorized(path, os.Geteuid(), "")
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range want {
		if !a.Allows(k) {
			t.Errorf("key %d from ssh-keygen not allowed", i)
		}
	}
	if len(a.Skipped) != 1 || a.Skipped[0].Line != 4 || !strings.Contains(a.Skipped[0].Reason, "ssh-rsa") {
		t.Errorf("Skipped = %v, want the RSA key on line 4", a.Skipped)
	}
}

func TestAllowsIsExact(t *testing.T) {
	pub := publicOf(newKey(t))
	a := parseAuthorizedKeys(MarshalAuthorizedKey(pub, "c"))
	if !a.Allows(pub) {
		t.Fatal("key not allowed")
	}
	for i := range pub {
		flipped := bytes.Clone(pub)
		flipped[i] ^= 1
		if a.Allows(flipped) {
			t.Fatalf("key with byte %d changed is allowed", i)
		}
	}
	if a.Allows(pub[:31]) || a.Allows(append(bytes.Clone(pub), 0)) || a.Allows(nil) {
		t.Error("key of wrong length allowed")
	}
	var none *Authorized
	if none.Allows(pub) || none.Keys() != nil {
		t.Error("nil *Authorized allows a key")
	}
	// Keys returns copies.
	a.Keys()[0][0] ^= 1
	if !a.Allows(pub) {
		t.Error("changing the result of Keys changed the set")
	}
}

// TestLoadAuthorizedStrictModes checks ownership and mode bits of the file
// and of every directory above it, as sshd's StrictModes. Tests run as root,
// so access never fails: only the checks can refuse.
func TestLoadAuthorizedStrictModes(t *testing.T) {
	needRoot(t)
	const (
		user  = 1234
		other = 4321
	)
	line := MarshalAuthorizedKey(publicOf(newKey(t)), "")

	type node struct {
		uid  int
		mode os.FileMode
	}
	tests := []struct {
		name      string
		home, dot node // <secure base>/home/.rlogin
		file      node // .../authorized_keys
		uid       int  // LoadAuthorized's uid argument
		badPath   string
	}{
		{"all root", node{0, 0o755}, node{0, 0o700}, node{0, 0o600}, 0, ""},
		{"user owns all", node{user, 0o755}, node{user, 0o700}, node{user, 0o600}, user, ""},
		{"root owns file of user", node{user, 0o750}, node{user, 0o700}, node{0, 0o644}, user, ""},
		{"file readable by all is fine", node{user, 0o755}, node{user, 0o755}, node{user, 0o644}, user, ""},
		{"file owned by other", node{user, 0o755}, node{user, 0o700}, node{other, 0o600}, user, "file"},
		{"file group writable", node{user, 0o755}, node{user, 0o700}, node{user, 0o620}, user, "file"},
		{"file other writable", node{user, 0o755}, node{user, 0o700}, node{user, 0o602}, user, "file"},
		{"dir owned by other", node{user, 0o755}, node{other, 0o700}, node{user, 0o600}, user, "dot"},
		{"dir group writable", node{user, 0o755}, node{user, 0o770}, node{user, 0o600}, user, "dot"},
		{"home other writable", node{user, 0o757}, node{user, 0o700}, node{user, 0o600}, user, "home"},
		{"home sticky and world writable", node{0, 0o777 | os.ModeSticky}, node{user, 0o700}, node{user, 0o600}, user, "home"},
		{"home owned by other", node{other, 0o755}, node{user, 0o700}, node{user, 0o600}, user, "home"},
		{"uid argument matters", node{user, 0o755}, node{user, 0o700}, node{user, 0o600}, other, "file"},
		{"uid argument matters for dirs", node{user, 0o755}, node{user, 0o700}, node{0, 0o600}, other, "dot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := secureTempDir(t)
			home := filepath.Join(base, "home")
			dot := filepath.Join(home, ".rlogin")
			file := filepath.Join(dot, "authorized_keys")
			if err := os.MkdirAll(dot, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, line, 0o600); err != nil {
				t.Fatal(err)
			}
			set := func(p string, n node) {
				t.Helper()
				if err := os.Chown(p, n.uid, 0); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, n.mode); err != nil {
					t.Fatal(err)
				}
			}
			set(home, tt.home)
			set(dot, tt.dot)
			set(file, tt.file)

			a, err := LoadAuthorized(file, tt.uid, "")
			if tt.badPath == "" {
				if err != nil {
					t.Fatalf("LoadAuthorized: %v", err)
				}
				if len(a.Keys()) != 1 {
					t.Fatalf("%d keys, want 1", len(a.Keys()))
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadAuthorized succeeded; want %s refused", tt.badPath)
			}
			bad := map[string]string{"home": "directory " + home + ":", "dot": "directory " + dot + ":", "file": "file " + file + ":"}[tt.badPath]
			if !strings.Contains(err.Error(), "bad ownership or modes for "+bad) {
				t.Errorf("error %q does not name %q", err, bad)
			}
		})
	}
}

// TestLoadAuthorizedSymlink checks that the directories checked are those
// of the real file, as sshd checks realpath(3) of it.
func TestLoadAuthorizedSymlink(t *testing.T) {
	needRoot(t)
	base := secureTempDir(t)
	safe := filepath.Join(base, "safe")
	unsafe := filepath.Join(base, "unsafe")
	for _, d := range []string{safe, unsafe} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(unsafe, 0o777); err != nil {
		t.Fatal(err)
	}
	line := MarshalAuthorizedKey(publicOf(newKey(t)), "")
	for _, d := range []string{safe, unsafe} {
		if err := os.WriteFile(filepath.Join(d, "ak"), line, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link in a safe directory to a file in an unsafe one is refused.
	link := filepath.Join(safe, "link")
	if err := os.Symlink(filepath.Join(unsafe, "ak"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthorized(link, 0, ""); err == nil || !strings.Contains(err.Error(), "directory "+unsafe+":") {
		t.Errorf("link to a file in a world-writable directory: %v", err)
	}
	// A link to a safe file is followed.
	link2 := filepath.Join(safe, "link2")
	if err := os.Symlink("ak", link2); err != nil {
		t.Fatal(err)
	}
	if a, err := LoadAuthorized(link2, 0, ""); err != nil || len(a.Keys()) != 1 {
		t.Errorf("link to a safe file: %v", err)
	}
}

// loadWithin returns LoadAuthorized's error for path, failing the test if
// it does not return within 10 s (a FIFO or /proc file whose read blocks).
func loadWithin(t *testing.T, path string, uid int) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := LoadAuthorized(path, uid, "")
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second): // watchdog
		t.Fatalf("LoadAuthorized(%s) hangs", path)
		return nil
	}
}

// TestLoadAuthorizedPseudoFiles checks that a link from a safe directory to
// a device or to a file of procfs or sysfs, which fstat as regular files of
// size 0 and may block (/proc/kmsg), is refused without being read.
func TestLoadAuthorizedPseudoFiles(t *testing.T) {
	dir := secureTempDir(t)
	uid := os.Geteuid()
	for _, target := range []string{"/dev/null", "/dev/zero", "/proc/kmsg", "/proc/self/status", "/sys/kernel/mm/transparent_hugepage/enabled"} {
		if _, err := os.Stat(target); err != nil {
			t.Logf("%s: %v; skipped", target, err)
			continue
		}
		t.Run(strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "-"), func(t *testing.T) {
			link := filepath.Join(dir, filepath.Base(target))
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			err := loadWithin(t, link, uid)
			// Not root, the user may not even open /proc/kmsg.
			if err == nil || !(strings.Contains(err.Error(), "not a regular file") || strings.Contains(err.Error(), "not on a disk file system") || errors.Is(err, fs.ErrPermission)) {
				t.Errorf("link to %s: %v, want a refusal naming why", target, err)
			}
		})
	}
}

func TestLoadAuthorizedNotAFile(t *testing.T) {
	dir := secureTempDir(t)
	// The files below are ours, so what is refused is what they are, not
	// who owns them.
	uid := os.Geteuid()
	_, err := LoadAuthorized(filepath.Join(dir, "missing"), uid, "")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	_, err = LoadAuthorized(filepath.Join(dir, "missing-dir", "authorized_keys"), uid, "")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want fs.ErrNotExist", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthorized(sub, uid, ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadWithin(t, fifo, uid); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), maxAuthorizedFile/2+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthorized(big, uid, ""); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestParseAuthorizedKeysOddInput(t *testing.T) {
	pub := publicOf(newKey(t))
	good := authorizedLine(t, pub, "c")
	tests := []struct {
		name    string
		in      string
		allowed bool
		skipped int
	}{
		{"empty", "", false, 0},
		{"only newlines", "\n\n\n", false, 0},
		{"NUL bytes", "\x00\x00\n", false, 1},
		{"unbalanced quote", `from="x ` + good, false, 1},
		{"quoted space in option", `environment="A=a b" ` + good, false, 1},
		{"option only", "no-pty", false, 1},
		{"key type only", "ssh-ed25519", false, 1},
		{"bad base64", "ssh-ed25519 !!!!", false, 1},
		{"truncated blob", good[:40], false, 1},
		{"tab separated", strings.Replace(good, " ", "\t", 1), true, 0},
		{"good after junk", "junk\n" + good, true, 1},
		{"invalid utf8 comment", good + " \xff\xfe", true, 0},
		{"exactly max line", good + " " + strings.Repeat("y", maxAuthorizedLine-len(good)-1), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseAuthorizedKeys([]byte(tt.in))
			if a.Allows(pub) != tt.allowed || len(a.Skipped) != tt.skipped {
				t.Errorf("allowed=%v skipped=%v, want %v and %d skipped", a.Allows(pub), a.Skipped, tt.allowed, tt.skipped)
			}
		})
	}
}

// FuzzParseAuthorizedKeys checks that no authorized_keys content makes the
// parser panic, that only option-free ed25519 lines authorize, and that
// every skipped line is reported once, in order, with a printable reason.
func FuzzParseAuthorizedKeys(f *testing.F) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	good := string(MarshalAuthorizedKey(publicOf(k), "alice@host"))
	f.Add([]byte(good))
	f.Add([]byte("# comment\n\n" + good + "no-pty " + good))
	f.Add([]byte(`from="10.0.0.0/8",command="echo \"hi\"" ` + good))
	f.Add([]byte("garbage\r\nssh-ed25519 AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := parseAuthorizedKeys(data)
		nlines := bytes.Count(data, []byte("\n")) + 1
		last := 0
		for _, s := range a.Skipped {
			if s.Line <= last || s.Line > nlines {
				t.Fatalf("skipped line %d after %d (of %d lines)", s.Line, last, nlines)
			}
			last = s.Line
			for _, r := range s.Reason {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("reason %q has a control character", s.Reason)
				}
			}
		}
		for _, key := range a.Keys() {
			if len(key) != ed25519.PublicKeySize || !a.Allows(key) {
				t.Fatalf("bad key %x", key)
			}
		}
		// Cross-check each line with x/crypto: a line authorizes iff it is
		// an ed25519 key line without options.
		want := map[string]bool{}
		for i, line := range bytes.Split(data, []byte("\n")) {
			if len(line) > maxAuthorizedLine {
				continue
			}
			pub, _, options, _, err := ssh.ParseAuthorizedKey(line)
			if err != nil || len(options) != 0 || pub.Type() != ssh.KeyAlgoED25519 {
				continue
			}
			edKey := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
			if !a.Allows(edKey) {
				t.Fatalf("line %d %q: option-free ed25519 key not allowed", i+1, line)
			}
			want[string(edKey)] = true
		}
		for _, key := range a.Keys() {
			if !want[string(key)] {
				t.Fatalf("key %x allowed, but no option-free line holds it", key)
			}
		}
	})
}

// TestLoadAuthorizedStopsAtHome checks that, as in sshd, only the directories up to the user's
// home are checked: a home inside a world-writable sticky directory such as /tmp works, while a
// group-writable directory between home and the file is still refused.
func TestLoadAuthorizedStopsAtHome(t *testing.T) {
	home := t.TempDir() // under /tmp, which is world-writable
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".rlogin")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, MarshalAuthorizedKey(publicOf(newKey(t)), ""), 0o600); err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid()
	if a, err := LoadAuthorized(path, uid, home); err != nil || len(a.Keys()) != 1 {
		t.Fatalf("file under a safe home in /tmp: %v", err)
	}
	if _, err := LoadAuthorized(path, uid, ""); err == nil {
		t.Fatal("with no home given, the world-writable /tmp above the file was not refused")
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthorized(path, uid, home); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("group-writable %s under home: got %v, want a refusal naming it", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthorized(path, uid, home); err == nil || !strings.Contains(err.Error(), home) {
		t.Fatalf("world-writable home: got %v, want a refusal naming it", err)
	}
}
