package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rlogin-go/rlogin/keys"
)

// ErrHostKeyVerification means the server's key was not accepted: it changed, the user said no,
// or there was no terminal to ask on.
var ErrHostKeyVerification = errors.New("client: host key verification failed")

// A Prompter asks the user a question and returns the line typed in answer.
type Prompter interface {
	// Prompt shows question (which ends without a newline) and returns the answer without its
	// line end. An error (io.EOF included) means there is no answer.
	Prompt(question string) (string, error)
}

// TTYPrompter asks on a terminal device, by default the controlling terminal /dev/tty, so the
// question and the answer never mix with standard input and output (as ssh does).
type TTYPrompter struct {
	Path string // "" means /dev/tty
}

// Prompt writes question to the terminal and reads one line from it.
func (p TTYPrompter) Prompt(question string) (string, error) {
	path := p.Path
	if path == "" {
		path = "/dev/tty"
	}
	tty, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("client: no terminal to ask on: %w", err)
	}
	defer tty.Close()
	if _, err := io.WriteString(tty, question); err != nil {
		return "", fmt.Errorf("client: prompt: %w", err)
	}
	// The terminal is in canonical mode here, so one read returns one line; keep reading in case
	// it is not, until the line ends. A human types this: small reads are fine.
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := tty.Read(buf)
		line = append(line, buf[:n]...)
		if i := strings.IndexAny(string(line), "\r\n"); i >= 0 {
			return string(line[:i]), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return string(line), nil
			}
			return "", fmt.Errorf("client: prompt: %w", err)
		}
		if n == 0 || len(line) > 4096 {
			return "", fmt.Errorf("client: prompt: %w", io.EOF)
		}
	}
}

// hostKeyCheck decides whether to trust a server's key, as ssh does with StrictHostKeyChecking=ask:
// a known key passes; an unknown one is shown and accepted only when the user types "yes", and is
// added to known_hosts (commit) once the handshake has succeeded; a changed one is refused with a
// loud warning.
type hostKeyCheck struct {
	known       *keys.KnownHosts
	hostport    string // host:port as dialed, the key in known_hosts
	displayPath string // known_hosts path as shown to the user (~/.rlogin/known_hosts)
	prompt      Prompter
	stderr      io.Writer

	// accepted is an unknown key the user accepted, in this attempt or (set by the caller) an
	// earlier one: it passes without a question. It goes into known_hosts only through commit,
	// after the handshake: verify runs before the server has proved that it holds the private
	// half, and an impostor can replay a server's certificate.
	accepted ed25519.PublicKey
	asked    bool  // the user accepted a new key in this attempt
	added    bool  // commit wrote accepted to known_hosts
	err      error // why the key was refused, if it was
}

// verify is the transport's VerifyPeer callback.
func (h *hostKeyCheck) verify(pub ed25519.PublicKey) error {
	h.err = h.decide(pub)
	return h.err
}

func (h *hostKeyCheck) decide(pub ed25519.PublicKey) error {
	name := knownhosts.Normalize(h.hostport)
	fp := keys.Fingerprint(pub)
	err := h.known.Check(h.hostport, pub)
	var changed *keys.KeyChangedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &changed):
		fmt.Fprint(h.stderr, changedWarning(name, fp, h.displayPath, changed.Line))
		return fmt.Errorf("%w: the key of %s has changed", ErrHostKeyVerification, name)
	case !errors.Is(err, keys.ErrUnknownHost):
		return fmt.Errorf("%w: %w", ErrHostKeyVerification, err)
	case h.accepted != nil && h.accepted.Equal(pub):
		return nil // the user accepted it in an earlier attempt
	}

	question := fmt.Sprintf("The authenticity of host '%s' can't be established.\n"+
		"ED25519 key fingerprint is %s.\n"+
		"Are you sure you want to continue connecting (yes/no)? ", name, fp)
	for {
		answer, err := h.prompt.Prompt(question)
		if err != nil {
			return fmt.Errorf("%w: no key is known for '%s' (ED25519 %s) and no answer from a terminal: %w",
				ErrHostKeyVerification, name, fp, err)
		}
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "yes":
			h.accepted, h.asked = pub, true
			return nil
		case "no":
			return fmt.Errorf("%w: the key of '%s' was not accepted", ErrHostKeyVerification, name)
		}
		question = "Please type 'yes' or 'no': "
	}
}

// commit adds the key the user accepted to known_hosts, if pub, the key of a handshake that
// succeeded, is that key; only the first call does anything.
func (h *hostKeyCheck) commit(pub ed25519.PublicKey) {
	if h.accepted == nil || !h.accepted.Equal(pub) || h.added {
		return
	}
	h.added = true
	if err := h.known.Add(h.hostport, pub); err != nil {
		fmt.Fprintf(h.stderr, "Failed to add the host to the list of known hosts (%s): %v\n", h.displayPath, err)
		return
	}
	fmt.Fprintf(h.stderr, "Warning: Permanently added '%s' (ED25519) to the list of known hosts.\n",
		knownhosts.Normalize(h.hostport))
}

// changedWarning is ssh's warning for a host whose key is not the one in known_hosts.
func changedWarning(name, fp, path string, line int) string {
	var b strings.Builder
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n")
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n")
	b.WriteString("Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n")
	b.WriteString("It is also possible that a host key has just been changed.\n")
	fmt.Fprintf(&b, "The fingerprint for the ED25519 key sent by the remote host '%s' is\n%s.\n", name, fp)
	b.WriteString("Please contact your system administrator.\n")
	fmt.Fprintf(&b, "Add the correct host key in %s to get rid of this message.\n", path)
	if line > 0 {
		fmt.Fprintf(&b, "Offending key in %s:%d\n", path, line)
	} else {
		fmt.Fprintf(&b, "Offending key in %s\n", path)
	}
	fmt.Fprintf(&b, "  remove the line with: ssh-keygen -R '%s' -f %s\n", name, shellPath(path))
	fmt.Fprintf(&b, "Host key for '%s' has changed; refusing to connect.\n", name)
	return b.String()
}

// shellPath quotes a path for a shell command line, leaving a leading ~/ outside the quotes so the
// shell still expands it.
func shellPath(p string) string {
	prefix := ""
	if strings.HasPrefix(p, "~/") {
		prefix, p = "~/", p[2:]
	}
	safe := p != ""
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return prefix + p
	}
	return prefix + "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
