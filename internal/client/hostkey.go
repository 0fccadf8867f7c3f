package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rlogin-go/rlogin/keys"
)

// ErrHostKeyVerification means the server's key was not accepted: it changed, the user said no,
// or there was no terminal to ask on.
var ErrHostKeyVerification = errors.New("client: host key verification failed")

// ErrNoTerminal is what a Prompter's error wraps when there is no terminal to ask on (rlogin runs
// from cron, a script or a service): rlogin then says how to trust the key without a question.
var ErrNoTerminal = errors.New("client: no terminal to ask on")

// A Prompter asks the user a question and returns the line typed in answer.
type Prompter interface {
	// Prompt shows question (which ends without a newline) and returns the answer without its
	// line end. An error (io.EOF included) means there is no answer; it wraps ErrNoTerminal when
	// there is nowhere to ask.
	Prompt(question string) (string, error)
}

// TTYPrompter asks on a terminal device, by default the controlling terminal /dev/tty, so the
// question and the answer never mix with standard input and output (as ssh does).
type TTYPrompter struct {
	Path string // "" means /dev/tty
}

// Prompt writes question to the terminal and reads one line from it.
func (p TTYPrompter) Prompt(question string) (string, error) {
	tty, err := openTTY(p.Path)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	if _, err := io.WriteString(tty, question); err != nil {
		return "", fmt.Errorf("client: prompt: %w", err)
	}
	return readLine(tty) // the terminal is in canonical mode here
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
	// pinned, if set, is the key of the login that a reconnection resumes: known_hosts is
	// checked as at that login, and when it does not know the host (the user accepted the key
	// but it could not be written), this key alone passes, without a question or a write.
	pinned ed25519.PublicKey
	asked  bool  // the user accepted a new key in this attempt
	added  bool  // commit wrote accepted to known_hosts
	err    error // why the key was refused, if it was
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
		return hostKeyRefused(fmt.Sprintf("the key of %s has changed", name), err)
	case !errors.Is(err, keys.ErrUnknownHost):
		return hostKeyRefused(plainText(err), err)
	case h.accepted != nil && h.accepted.Equal(pub):
		return nil // the user accepted it in an earlier attempt
	case h.pinned != nil:
		if h.pinned.Equal(pub) {
			return nil
		}
		return hostKeyRefused(fmt.Sprintf("'%s' now shows another key (ED25519 %s) than at the login", name, fp), err)
	}

	question := fmt.Sprintf("The authenticity of host '%s' can't be established.\n"+
		"ED25519 key fingerprint is %s.\n"+
		"Are you sure you want to continue connecting (yes/no)? ", name, fp)
	for {
		answer, err := h.prompt.Prompt(question)
		if errors.Is(err, ErrNoTerminal) {
			fmt.Fprint(h.stderr, noTerminalAdvice(name, fp, h.displayPath, pub))
			return hostKeyRefused(fmt.Sprintf("no terminal to ask whether to trust '%s' (ED25519 %s)", name, fp), err)
		}
		if err != nil {
			return hostKeyRefused(fmt.Sprintf("no answer to whether to trust '%s' (ED25519 %s): %s", name, fp, plainText(err)), err)
		}
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "yes":
			h.accepted, h.asked = pub, true
			return nil
		case "no":
			return hostKeyRefused(fmt.Sprintf("the key of '%s' was not accepted", name), nil)
		}
		question = "Please type 'yes' or 'no': "
	}
}

// hostKeyRefused is the error for a refused host key: it says msg after "host key verification
// failed: ", and is ErrHostKeyVerification and cause for errors.Is and errors.As.
func hostKeyRefused(msg string, cause error) error {
	return &connectError{msg: "host key verification failed: " + msg, err: errors.Join(ErrHostKeyVerification, cause)}
}

// noTerminalAdvice is what rlogin says about an unknown host key when there is no terminal to ask
// on: the question ssh would have asked, and the two ways to trust the key without it.
func noTerminalAdvice(name, fp, path string, pub ed25519.PublicKey) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The authenticity of host '%s' can't be established.\n", name)
	fmt.Fprintf(&b, "ED25519 key fingerprint is %s.\n", fp)
	b.WriteString("There is no terminal to ask whether to trust it. If the fingerprint is the one the server's\n")
	b.WriteString("administrator gives you, run rlogin once from a terminal and answer yes, or add this line to\n")
	fmt.Fprintf(&b, "%s:\n", path)
	if sshPub, err := ssh.NewPublicKey(pub); err == nil { // an ed25519 key always converts
		fmt.Fprintf(&b, "%s\n", knownhosts.Line([]string{name}, sshPub))
	}
	return b.String()
}

// commit adds the key the user accepted to known_hosts, if pub, the key of a handshake that
// succeeded, is that key; only the first call does anything.
func (h *hostKeyCheck) commit(pub ed25519.PublicKey) {
	if h.accepted == nil || !h.accepted.Equal(pub) || h.added {
		return
	}
	h.added = true
	if err := h.known.Add(h.hostport, pub); err != nil {
		fmt.Fprintf(h.stderr, "Failed to add the host to the list of known hosts (%s): %s\n", h.displayPath, plainText(err))
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
