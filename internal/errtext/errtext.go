// Package errtext words this module's errors for the people who read them: a command prints one
// failure as one line, its own name and then what happened, without the package prefixes that
// the errors underneath carry for their chains ("transport: listen tcp: ...").
//
// Typical usage, in a command's message about a failure:
//
//	l, err := transport.Listen(ctx, addr)
//	if err != nil {
//		// "rlogind: cannot listen on :99999: listen tcp: address 99999: invalid port"
//		return errtext.Errorf("rlogind: cannot listen on %s: %w", addr, err)
//	}
//
// or, for the text alone: fmt.Fprintf(stderr, "rlogin: %s\n", errtext.Plain(err)).
package errtext

import (
	"fmt"
	"strings"
)

// Plain is err's text without the prefixes of this module's packages, wherever they stand:
// "transport: tls handshake: remote error: tls: bad certificate" becomes "tls handshake: remote
// error: tls: bad certificate". Prefixes from outside the module ("tls: ") stay: they name the
// layer that failed, which the rest of the text does not.
func Plain(err error) string {
	parts := strings.Split(err.Error(), ": ")
	kept := parts[:0]
	for _, p := range parts {
		if !isPackagePrefix(p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ": ")
}

// isPackagePrefix reports whether word is the prefix the errors of one of this module's packages
// start with. The commands' own names (rlogin, rlogind) are not: they start the line.
func isPackagePrefix(word string) bool {
	switch word {
	case "client", "transport", "session", "classic", "keys", "rawio", "pty",
		"admission", "daemon", "inetd", "logsink", "systemd", "sigreset", "systemlogin",
		"usershell", "sessioncgroup", "userfile", "rhosts":
		return true
	}
	return false
}

// Errorf is fmt.Errorf, except that each error among args reads as Plain gives it (whether the
// format shows it with %w or %v); the error returned still wraps those shown with %w, for
// errors.Is and errors.As.
func Errorf(format string, args ...any) error {
	shown := make([]any, len(args))
	for i, a := range args {
		if err, ok := a.(error); ok {
			a = Plain(err)
		}
		shown[i] = a
	}
	return &wordedError{
		text: fmt.Sprintf(strings.ReplaceAll(format, "%w", "%v"), shown...),
		err:  fmt.Errorf(format, args...),
	}
}

// A wordedError reads as its text and wraps err, which has the same words with the prefixes.
type wordedError struct {
	text string
	err  error
}

func (e *wordedError) Error() string { return e.text }
func (e *wordedError) Unwrap() error { return e.err }
