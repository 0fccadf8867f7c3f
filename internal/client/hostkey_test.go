package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/keys"
)

// fakePrompt answers questions from a list and records them; past the list it answers io.EOF.
type fakePrompt struct {
	answers   []string
	questions []string
}

func (p *fakePrompt) Prompt(q string) (string, error) {
	p.questions = append(p.questions, q)
	if len(p.answers) == 0 {
		return "", io.EOF
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return a, nil
}

func newPub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func newCheck(t *testing.T, answers ...string) (*hostKeyCheck, *fakePrompt, *bytes.Buffer) {
	t.Helper()
	p := &fakePrompt{answers: answers}
	var stderr bytes.Buffer
	path := filepath.Join(t.TempDir(), ".rlogin", "known_hosts")
	return &hostKeyCheck{
		known:       &keys.KnownHosts{Path: path},
		hostport:    "example.net:5513",
		displayPath: "~/.rlogin/known_hosts",
		prompt:      p,
		stderr:      &stderr,
	}, p, &stderr
}

func TestHostKeyUnknownYes(t *testing.T) {
	for _, yes := range []string{"yes", "YES", " yes "} {
		h, p, stderr := newCheck(t, yes)
		pub := newPub(t)
		if err := h.verify(pub); err != nil {
			t.Fatalf("answer %q: %v", yes, err)
		}
		want := "The authenticity of host '[example.net]:5513' can't be established.\n" +
			"ED25519 key fingerprint is " + keys.Fingerprint(pub) + ".\n" +
			"Are you sure you want to continue connecting (yes/no)? "
		if len(p.questions) != 1 || p.questions[0] != want {
			t.Fatalf("questions %q, want [%q]", p.questions, want)
		}
		// Nothing is written before the handshake succeeded (commit): see
		// TestHostKeyAddedOnlyAfterHandshake.
		if _, err := os.Stat(h.known.Path); !os.IsNotExist(err) || stderr.Len() != 0 {
			t.Fatalf("before commit: known_hosts %v, stderr %q", err, stderr)
		}
		h.commit(newPub(t)) // another key: not the one accepted
		if _, err := os.Stat(h.known.Path); !os.IsNotExist(err) || stderr.Len() != 0 {
			t.Fatalf("after a commit of another key: known_hosts %v, stderr %q", err, stderr)
		}
		h.commit(pub)
		h.commit(pub) // once only
		if got := stderr.String(); got != "Warning: Permanently added '[example.net]:5513' (ED25519) to the list of known hosts.\n" {
			t.Fatalf("stderr %q", got)
		}
		if !h.asked || !h.added {
			t.Fatalf("asked %v, added %v", h.asked, h.added)
		}
		// Known now: no question the next time.
		h2, p2, stderr2 := newCheck(t)
		h2.known = h.known
		if err := h2.verify(pub); err != nil || len(p2.questions) != 0 || stderr2.Len() != 0 {
			t.Fatalf("second check: %v, questions %q, stderr %q", err, p2.questions, stderr2)
		}
	}
}

func TestHostKeyUnknownNo(t *testing.T) {
	h, p, stderr := newCheck(t, "maybe", "", "no")
	pub := newPub(t)
	err := h.verify(pub)
	if !errors.Is(err, ErrHostKeyVerification) {
		t.Fatalf("verify = %v, want ErrHostKeyVerification", err)
	}
	if len(p.questions) != 3 || p.questions[1] != "Please type 'yes' or 'no': " || p.questions[2] != p.questions[1] {
		t.Fatalf("questions %q", p.questions)
	}
	if stderr.Len() != 0 || h.asked || h.accepted != nil {
		t.Fatalf("stderr %q, asked %v, accepted %v", stderr, h.asked, h.accepted)
	}
	if _, err := os.Stat(h.known.Path); !os.IsNotExist(err) {
		t.Fatalf("known_hosts written after no: %v", err)
	}
	if !strings.Contains(userMessage(err), "host key verification failed") {
		t.Fatalf("message %q", userMessage(err))
	}
}

// TestHostKeyAcceptedEarlier: a key the user accepted in an earlier attempt passes without a
// question, and is added at the commit; another unknown key is asked about.
func TestHostKeyAcceptedEarlier(t *testing.T) {
	pub := newPub(t)
	h, p, stderr := newCheck(t)
	h.accepted = pub
	if err := h.verify(pub); err != nil || len(p.questions) != 0 || stderr.Len() != 0 {
		t.Fatalf("verify: %v, questions %q, stderr %q", err, p.questions, stderr)
	}
	h.commit(pub)
	if err := h.known.Check(h.hostport, pub); err != nil {
		t.Fatalf("after commit: %v", err)
	}
	h2, p2, _ := newCheck(t, "no")
	h2.accepted = pub
	if err := h2.verify(newPub(t)); !errors.Is(err, ErrHostKeyVerification) || len(p2.questions) != 1 {
		t.Fatalf("another key: %v, questions %q", err, p2.questions)
	}
}

// TestHostKeyNoTerminal checks what rlogin says about an unknown key with no terminal to ask on:
// the host and the fingerprint, and how to trust the key; the line it offers for known_hosts
// makes the key known.
func TestHostKeyNoTerminal(t *testing.T) {
	h, _, stderr := newCheck(t)
	h.prompt = TTYPrompter{Path: filepath.Join(t.TempDir(), "no-such-tty")}
	pub := newPub(t)
	err := h.verify(pub)
	if !errors.Is(err, ErrHostKeyVerification) || !errors.Is(err, ErrNoTerminal) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("verify = %v, want ErrHostKeyVerification, ErrNoTerminal and the open's error", err)
	}
	msg := userMessage(err)
	for _, want := range []string{"host key verification failed: ", keys.Fingerprint(pub), "'[example.net]:5513'", "no terminal"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "client:") || strings.Contains(msg, "open ") {
		t.Errorf("message %q speaks the code's language", msg)
	}
	advice := stderr.String()
	for _, want := range []string{"The authenticity of host '[example.net]:5513' can't be established.\n",
		"ED25519 key fingerprint is " + keys.Fingerprint(pub) + ".\n", "run rlogin once from a terminal", "~/.rlogin/known_hosts:\n"} {
		if !strings.Contains(advice, want) {
			t.Errorf("advice %q does not say %q", advice, want)
		}
	}
	lines := strings.Split(strings.TrimSuffix(advice, "\n"), "\n")
	line := lines[len(lines)-1]
	if !strings.HasPrefix(line, "[example.net]:5513 ssh-ed25519 ") {
		t.Fatalf("advice does not end with a known_hosts line: %q", advice)
	}
	if err := os.MkdirAll(filepath.Dir(h.known.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.known.Path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.known.Check(h.hostport, pub); err != nil {
		t.Fatalf("the offered line does not make the key known: %v", err)
	}
}

// TestHostKeyNoAnswer checks the message when the question gets no answer (end of input).
func TestHostKeyNoAnswer(t *testing.T) {
	h, _, stderr := newCheck(t)
	pub := newPub(t)
	err := h.verify(pub)
	if !errors.Is(err, ErrHostKeyVerification) || !errors.Is(err, io.EOF) {
		t.Fatalf("verify = %v, want ErrHostKeyVerification and io.EOF", err)
	}
	want := "host key verification failed: no answer to whether to trust '[example.net]:5513' (ED25519 " +
		keys.Fingerprint(pub) + "): EOF"
	if msg := userMessage(err); msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing: the question was asked", stderr.String())
	}
}

func TestHostKeyEOFAfterGarbage(t *testing.T) {
	h, p, _ := newCheck(t, "y")
	if err := h.verify(newPub(t)); !errors.Is(err, ErrHostKeyVerification) {
		t.Fatalf("verify = %v, want ErrHostKeyVerification", err)
	}
	if len(p.questions) != 2 {
		t.Fatalf("questions %q", p.questions)
	}
}

func TestHostKeyChanged(t *testing.T) {
	h, p, stderr := newCheck(t)
	old := newPub(t)
	if err := h.known.Add(h.hostport, newPub(t)); err != nil { // some other host's line first
		t.Fatal(err)
	}
	h.hostport = "example.org:5513"
	if err := h.known.Add(h.hostport, old); err != nil {
		t.Fatal(err)
	}
	pub := newPub(t)
	err := h.verify(pub)
	if !errors.Is(err, ErrHostKeyVerification) {
		t.Fatalf("verify = %v, want ErrHostKeyVerification", err)
	}
	if len(p.questions) != 0 {
		t.Fatalf("asked %q about a changed key", p.questions)
	}
	out := stderr.String()
	for _, want := range []string{
		"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
		"IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
		keys.Fingerprint(pub) + ".\n",
		"Offending key in ~/.rlogin/known_hosts:2\n",
		"remove the line with: ssh-keygen -R '[example.org]:5513' -f ~/.rlogin/known_hosts\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("warning does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, keys.Fingerprint(old)) {
		t.Errorf("warning shows the old key's fingerprint as the new one:\n%s", out)
	}
	// The file is unchanged: still the old key.
	if err := h.known.Check(h.hostport, old); err != nil {
		t.Fatalf("old key no longer known: %v", err)
	}
}

func TestShellPath(t *testing.T) {
	for in, want := range map[string]string{
		"~/.rlogin/known_hosts":     "~/.rlogin/known_hosts",
		"/tmp/x y/known_hosts":      "'/tmp/x y/known_hosts'",
		"~/it's/known_hosts":        `~/'it'\''s/known_hosts'`,
		"/home/bob/.rlogin/known_h": "/home/bob/.rlogin/known_h",
	} {
		if got := shellPath(in); got != want {
			t.Errorf("shellPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTTYPrompter asks on a real pty, as rlogin asks on /dev/tty.
func TestTTYPrompter(t *testing.T) {
	term := openTerminal(t)
	type result struct {
		answer string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		a, err := TTYPrompter{Path: term.slave.Name()}.Prompt("Continue (yes/no)? ")
		done <- result{a, err}
	}()
	term.expect(regexp.QuoteMeta("Continue (yes/no)? ")) // the question shows on the terminal; then the user types
	term.send("yes\r")
	select {
	case r := <-done:
		if r.err != nil || r.answer != "yes" {
			t.Fatalf("Prompt = %q, %v; want yes", r.answer, r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Prompt did not return")
	}
}

// TestHostKeyPinned: while reconnecting, the key of the login passes without a question or a
// write when known_hosts does not know the host; another unknown key is refused without a
// question; a changed key is refused as always.
func TestHostKeyPinned(t *testing.T) {
	h, p, stderr := newCheck(t)
	pub := newPub(t)
	h.pinned = pub
	if err := h.verify(pub); err != nil {
		t.Fatalf("the pinned key: %v", err)
	}
	h.commit(pub)
	if _, err := os.Stat(h.known.Path); !os.IsNotExist(err) || stderr.Len() != 0 || len(p.questions) != 0 {
		t.Fatalf("the pinned key: known_hosts %v, stderr %q, questions %q", err, stderr, p.questions)
	}
	err := h.verify(newPub(t))
	if !errors.Is(err, ErrHostKeyVerification) || !strings.Contains(userMessage(err), "now shows another key") || len(p.questions) != 0 {
		t.Fatalf("another key: %v, questions %q", err, p.questions)
	}
	if err := h.known.Add(h.hostport, newPub(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.verify(pub); !errors.Is(err, ErrHostKeyVerification) || !strings.Contains(stderr.String(), "HAS CHANGED") {
		t.Fatalf("a key that known_hosts says changed: %v, stderr %q", err, stderr)
	}
}
