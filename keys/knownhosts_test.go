package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// khLine returns a known_hosts line "pattern ssh-ed25519 AAAA...".
func khLine(t *testing.T, pattern string, pub ed25519.PublicKey) string {
	t.Helper()
	return pattern + " " + authorizedLine(t, pub, "")
}

func writeKnownHosts(t *testing.T, lines ...string) *KnownHosts {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &KnownHosts{Path: path}
}

// wantChanged fails t unless err is a *KeyChangedError with these fields.
func wantChanged(t *testing.T, err error, kh *KnownHosts, host string, line int, known ...ed25519.PublicKey) {
	t.Helper()
	var ce *KeyChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("Check = %v, want *KeyChangedError", err)
	}
	var fps []string
	for _, k := range known {
		fps = append(fps, Fingerprint(k))
	}
	want := &KeyChangedError{Host: host, Path: kh.Path, Line: line, Known: fps}
	if fmt.Sprint(*ce) != fmt.Sprint(*want) {
		t.Errorf("KeyChangedError = %+v, want %+v", *ce, *want)
	}
	for _, s := range append([]string{host, kh.Path, fmt.Sprintf(":%d", line)}, fps...) {
		if !strings.Contains(ce.Error(), s) {
			t.Errorf("error %q does not mention %q", ce.Error(), s)
		}
	}
}

func TestKnownHostsAddCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".rlogin")
	kh := &KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	k1, k2 := publicOf(newKey(t)), publicOf(newKey(t))

	if err := kh.Check("localhost:5513", k1); err != ErrUnknownHost {
		t.Fatalf("Check without a file = %v, want ErrUnknownHost", err)
	}
	if err := kh.Add("localhost:5513", k1); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, kh.Path); m != 0o600 {
		t.Errorf("known_hosts mode %04o, want 0600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode %04o, want 0700", m)
	}
	data, err := os.ReadFile(kh.Path)
	if err != nil {
		t.Fatal(err)
	}
	if want := knownhosts.Line([]string{"[localhost]:5513"}, mustSSHPub(t, k1)) + "\n"; string(data) != want {
		t.Errorf("file = %q, want %q", data, want)
	}

	for _, hp := range []string{"localhost:5513", "LocalHost:5513", "localhost:05513"} {
		if err := kh.Check(hp, k1); err != nil {
			t.Errorf("Check(%q, k1) = %v, want nil", hp, err)
		}
	}
	for _, hp := range []string{"localhost:5514", "localhost", "localhost:22", "otherhost:5513", "127.0.0.1:5513"} {
		if err := kh.Check(hp, k1); !errors.Is(err, ErrUnknownHost) {
			t.Errorf("Check(%q, k1) = %v, want ErrUnknownHost", hp, err)
		}
	}
	wantChanged(t, kh.Check("localhost:5513", k2), kh, "[localhost]:5513", 1, k1)

	// Port 22 is stored bare, IPv6 in brackets, as OpenSSH does.
	if err := kh.Add("Example.ORG:22", k2); err != nil {
		t.Fatal(err)
	}
	if err := kh.Add("[::1]:5513", k2); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(kh.Path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "example.org ssh-ed25519 ") || !strings.HasPrefix(lines[2], "[::1]:5513 ssh-ed25519 ") {
		t.Errorf("file:\n%s", data)
	}
	for _, hp := range []string{"example.org", "example.org:22", "[::1]:5513", "[0:0::1]:5513"} {
		if err := kh.Check(hp, k2); err != nil {
			t.Errorf("Check(%q, k2) = %v", hp, err)
		}
	}
	wantChanged(t, kh.Check("[::1]:5513", k1), kh, "[::1]:5513", 3, k2)
}

// TestKnownHostsOpenSSHInterop checks the file Add writes with ssh-keygen
// -F, and entries hashed by ssh-keygen -H with Check.
func TestKnownHostsOpenSSHInterop(t *testing.T) {
	kh := &KnownHosts{Path: filepath.Join(t.TempDir(), "known_hosts")}
	k1, k2 := publicOf(newKey(t)), publicOf(newKey(t))
	if err := kh.Add("localhost:5513", k1); err != nil {
		t.Fatal(err)
	}
	if err := kh.Add("server.example:22", k2); err != nil {
		t.Fatal(err)
	}
	for host, key := range map[string]ed25519.PublicKey{"[localhost]:5513": k1, "server.example": k2} {
		out := sshKeygen(t, "-F", host, "-f", kh.Path)
		if !strings.Contains(out, authorizedLine(t, key, "")) {
			t.Errorf("ssh-keygen -F %s did not find the entry:\n%s", host, out)
		}
	}
	if _, err := runSSHKeygen(t, "-F", "[localhost]:5514", "-f", kh.Path); err == nil {
		t.Error("ssh-keygen -F found a host that was never added")
	}

	// Hash the file as HashKnownHosts / ssh-keygen -H do.
	sshKeygen(t, "-H", "-f", kh.Path)
	data, err := os.ReadFile(kh.Path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "localhost") || strings.Count(string(data), "|1|") != 2 {
		t.Fatalf("ssh-keygen -H did not hash the file:\n%s", data)
	}
	if err := kh.Check("localhost:5513", k1); err != nil {
		t.Errorf("hashed entry: Check = %v", err)
	}
	if err := kh.Check("server.example", k2); err != nil {
		t.Errorf("hashed entry: Check = %v", err)
	}
	if err := kh.Check("localhost:5514", k1); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("hashed entry, other port: Check = %v, want ErrUnknownHost", err)
	}
	wantChanged(t, kh.Check("localhost:5513", k2), kh, "[localhost]:5513", 1, k1)
}

func TestKnownHostsHashedByGo(t *testing.T) {
	k1, k2 := publicOf(newKey(t)), publicOf(newKey(t))
	kh := writeKnownHosts(t,
		"# hashed entries",
		khLine(t, knownhosts.HashHostname("[h.example]:5513"), k1),
	)
	if err := kh.Check("h.example:5513", k1); err != nil {
		t.Errorf("Check = %v", err)
	}
	wantChanged(t, kh.Check("h.example:5513", k2), kh, "[h.example]:5513", 2, k1)
	if err := kh.Check("h.example:22", k1); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("Check other port = %v, want ErrUnknownHost", err)
	}
}

func TestKnownHostsMarkersAndPatterns(t *testing.T) {
	k1, k2, k3, k4, ca := publicOf(newKey(t)), publicOf(newKey(t)), publicOf(newKey(t)), publicOf(newKey(t)), publicOf(newKey(t))
	kh := writeKnownHosts(t,
		/* 1 */ "garbage line that is skipped",
		/* 2 */ khLine(t, "[multi]:5513", k1),
		/* 3 */ khLine(t, "[multi]:5513", k2),
		/* 4 */ khLine(t, "*.wild.example,!bad.wild.example", k1),
		/* 5 */ "@revoked * "+authorizedLine(t, k3, ""),
		/* 6 */ khLine(t, "[revoked]:5513", k3),
		/* 7 */ "@cert-authority [ca-only]:5513 "+authorizedLine(t, ca, ""),
		/* 8 */ "@cert-authority *.example "+authorizedLine(t, ca, ""),
		/* 9 */ khLine(t, "[both]:5513", k1),
		/* 10 */ khLine(t, "host-a,host-b", k2),
		/* 11 */ "  \t"+khLine(t, "[indented]:5513", k1),
	)
	// Several keys for one host: any of them is fine.
	for _, k := range []ed25519.PublicKey{k1, k2} {
		if err := kh.Check("multi:5513", k); err != nil {
			t.Errorf("multi: Check = %v", err)
		}
	}
	wantChanged(t, kh.Check("multi:5513", k4), kh, "[multi]:5513", 2, k1, k2)

	// Wildcards and negation.
	if err := kh.Check("a.wild.example:22", k1); err != nil {
		t.Errorf("wildcard: Check = %v", err)
	}
	if err := kh.Check("bad.wild.example:22", k1); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("negated: Check = %v, want ErrUnknownHost", err)
	}
	if err := kh.Check("a.wild.example:5513", k1); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("wildcard, other port: Check = %v, want ErrUnknownHost", err)
	}

	// @revoked wins even over an entry listing the key.
	err := kh.Check("revoked:5513", k3)
	if !errors.Is(err, ErrRevokedKey) || !strings.Contains(err.Error(), kh.Path+":5") {
		t.Errorf("revoked: Check = %v, want ErrRevokedKey at line 5", err)
	}
	if err := kh.Check("elsewhere:5513", k3); !errors.Is(err, ErrRevokedKey) {
		t.Errorf("revoked, unknown host: Check = %v, want ErrRevokedKey", err)
	}

	// @cert-authority lines are not host keys: not a changed key...
	if err := kh.Check("ca-only:5513", k1); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("CA only: Check = %v, want ErrUnknownHost", err)
	}
	// ... nor part of the known keys of a host that has plain entries.
	wantChanged(t, kh.Check("both:5513", k2), kh, "[both]:5513", 9, k1)

	// Comma-separated patterns, leading white space.
	if err := kh.Check("host-b", k2); err != nil {
		t.Errorf("pattern list: Check = %v", err)
	}
	if err := kh.Check("indented:5513", k1); err != nil {
		t.Errorf("indented: Check = %v", err)
	}
}

func TestKnownHostsBadInput(t *testing.T) {
	k1 := publicOf(newKey(t))
	kh := writeKnownHosts(t, khLine(t, "host", k1))
	for _, hp := range []string{
		"", ":5513", "[]:5513", "evil host:5513", "a,b:22", "*:22", "h*st:22", "?:22",
		"!host:22", "@revoked:22", "|1|x|y:22", "host\n:22", "host\x00:22", "#host:22",
		"host:0", "host:65536", "host:abc", "host:-1", "unix:/tmp/sock", "[host]x:22", "tcp:host:5513", "a:b", "[a:b]:5513",
	} {
		if err := kh.Check(hp, k1); err == nil || errors.Is(err, ErrUnknownHost) {
			t.Errorf("Check(%q) = %v, want an invalid address error", hp, err)
		}
		if err := kh.Add(hp, k1); err == nil {
			t.Errorf("Add(%q) succeeded", hp)
		}
	}
	if err := kh.Check("host", k1[:5]); err == nil {
		t.Error("Check with a short key succeeded")
	}
	if err := kh.Add("host", k1[:5]); err == nil {
		t.Error("Add with a short key succeeded")
	}
	data, _ := os.ReadFile(kh.Path)
	if strings.Count(string(data), "\n") != 1 {
		t.Errorf("failed Adds wrote to the file:\n%s", data)
	}
	if err := (&KnownHosts{}).Check("host", k1); err == nil {
		t.Error("Check with no Path succeeded")
	}
	if err := (&KnownHosts{}).Add("host", k1); err == nil {
		t.Error("Add with no Path succeeded")
	}

	// A file with no valid line at all is an error, not "unknown".
	bad := writeKnownHosts(t, "this is not", "a known_hosts file")
	if err := bad.Check("host", k1); err == nil || errors.Is(err, ErrUnknownHost) {
		t.Errorf("garbage file: Check = %v, want an error", err)
	}
	// An empty file or only comments: unknown.
	empty := writeKnownHosts(t, "# nothing yet")
	if err := empty.Check("host", k1); err != ErrUnknownHost {
		t.Errorf("comment-only file: Check = %v, want ErrUnknownHost", err)
	}

	// Not a regular file: an error, at once.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan [2]error, 1)
	go func() {
		f := &KnownHosts{Path: fifo}
		done <- [2]error{f.Check("host", k1), f.Add("host", k1)}
	}()
	select {
	case errs := <-done:
		for _, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("FIFO: %v", err)
			}
		}
	case <-time.After(10 * time.Second): // watchdog
		t.Fatal("KnownHosts on a FIFO hangs")
	}
}

func TestKnownHostsAddAfterLineWithoutNewline(t *testing.T) {
	k1, k2 := publicOf(newKey(t)), publicOf(newKey(t))
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(khLine(t, "one", k1)), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := &KnownHosts{Path: path}
	if err := kh.Add("two", k2); err != nil {
		t.Fatal(err)
	}
	if err := kh.Check("one", k1); err != nil {
		t.Errorf("Check(one) = %v", err)
	}
	if err := kh.Check("two", k2); err != nil {
		t.Errorf("Check(two) = %v", err)
	}
}

func TestKnownHostsConcurrentAdd(t *testing.T) {
	kh := &KnownHosts{Path: filepath.Join(t.TempDir(), "known_hosts")}
	const n = 16
	keys := make([]ed25519.PublicKey, n)
	for i := range keys {
		keys[i] = publicOf(newKey(t))
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- kh.Add(fmt.Sprintf("host%d:5513", i), keys[i]) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := kh.Check(fmt.Sprintf("host%d:5513", i), keys[i]); err != nil {
			t.Errorf("host%d: %v", i, err)
		}
	}
	// Every line parses: nothing interleaved.
	data, _ := os.ReadFile(kh.Path)
	rest := data
	for count := 0; ; count++ {
		_, _, _, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			if count != n {
				t.Fatalf("%d entries parse, want %d: %v\n%s", count, n, err, data)
			}
			break
		}
		rest = r
	}
}

// TestKnownHostsCaseInsensitive: host names in known_hosts match whatever their case, as in
// ssh(1), so a pinned key written (or copied) with capitals still pins: another key is a changed
// key, not an unknown host that trust on first use would let in.
func TestKnownHostsCaseInsensitive(t *testing.T) {
	pinned, other := publicOf(newKey(t)), publicOf(newKey(t))
	kh := writeKnownHosts(t,
		/* 1 */ khLine(t, "[Server.Example.ORG]:5513", pinned),
		/* 2 */ khLine(t, "*.Wild.Example,!Bad.Wild.Example", pinned),
		/* 3 */ khLine(t, "[FE80::1]:5513", pinned),
	)
	for _, host := range []string{"Server.Example.org:5513", "server.example.org:5513", "SERVER.EXAMPLE.ORG:5513"} {
		if err := kh.Check(host, pinned); err != nil {
			t.Errorf("Check(%s) with the pinned key = %v", host, err)
		}
		wantChanged(t, kh.Check(host, other), kh, "[server.example.org]:5513", 1, pinned)
	}
	if err := kh.Check("a.wild.example", pinned); err != nil {
		t.Errorf("wildcard with capitals: Check = %v", err)
	}
	if err := kh.Check("bad.wild.example", pinned); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("negation with capitals: Check = %v, want ErrUnknownHost", err)
	}
	if err := kh.Check("[fe80::1]:5513", pinned); err != nil {
		t.Errorf("IPv6 in capitals: Check = %v", err)
	}
}

// TestKnownHostsCertAuthorityIsNotAHostKey: a key listed only as a @cert-authority may sign host
// certificates; presented as a plain host key it is not known (ssh(1) asks, as for an unknown host).
func TestKnownHostsCertAuthorityIsNotAHostKey(t *testing.T) {
	ca, k1 := publicOf(newKey(t)), publicOf(newKey(t))
	kh := writeKnownHosts(t,
		/* 1 */ "@cert-authority [anything.example]:5513 "+authorizedLine(t, ca, ""),
		/* 2 */ "@cert-authority *.example "+authorizedLine(t, ca, ""),
		/* 3 */ khLine(t, "[pinned.example]:5513", k1),
	)
	if err := kh.Check("anything.example:5513", ca); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("CA key as the host key of a host with no entry: Check = %v, want ErrUnknownHost", err)
	}
	// A host with a pinned key: the CA key is just another key.
	wantChanged(t, kh.Check("pinned.example:5513", ca), kh, "[pinned.example]:5513", 3, k1)
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "a.b.c", true},
		{"a*", "a", true},
		{"*.example", "a.b.example", true},
		{"*.example", "example", false},
		{"h?st", "host", true},
		{"h?st", "hst", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"host", "hosts", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzKnownHostsCheck checks that no known_hosts content makes Check panic
// and that Check's answer is one of the documented ones.
func FuzzKnownHostsCheck(f *testing.F) {
	k := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := publicOf(k)
	line := "[localhost]:5513 " + strings.TrimSpace(string(MarshalAuthorizedKey(pub, "")))
	f.Add([]byte(line + "\n"))
	f.Add([]byte("@revoked * " + strings.TrimSpace(string(MarshalAuthorizedKey(pub, ""))) + "\n"))
	f.Add([]byte("@cert-authority *.x " + strings.TrimSpace(string(MarshalAuthorizedKey(pub, ""))) + "\n" + line))
	f.Add([]byte("|1|zdkNQTdsiuoGUx1wKrCfTr5Q7gk=|1UnfbFt8psVecjCD8NPe/vFdK/s= ssh-ed25519 AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := (&KnownHosts{Path: path}).Check("localhost:5513", pub)
		var ce *KeyChangedError
		if errors.As(err, &ce) && (ce.Line < 1 || len(ce.Known) == 0) {
			t.Fatalf("KeyChangedError without a line or keys: %+v", ce)
		}
	})
}
