package errtext

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("transport: request mailbox %q: %w", "login", errors.New("transport: invalid mailbox name")),
			`request mailbox "login": invalid mailbox name`},
		{fmt.Errorf("session: connection lost: %w", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")),
			"connection lost: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"},
		{fmt.Errorf("transport: tls handshake: %w", errors.New("remote error: tls: bad certificate")),
			"tls handshake: remote error: tls: bad certificate"},
		{fmt.Errorf("client: %w", fmt.Errorf("keys: %w", errors.New("open /x: permission denied"))), "open /x: permission denied"},
		{fmt.Errorf("classic: reading the server's answer: %w", errors.New("unexpected EOF")), "reading the server's answer: unexpected EOF"},
		{fmt.Errorf("daemon: PermitRootLogin %q: want no", "maybe"), `PermitRootLogin "maybe": want no`},
		{errors.New("admission: max-startups \"1:2\": want start:rate:full"), `max-startups "1:2": want start:rate:full`},
		{errors.New("no session: here"), "no session: here"}, // a word, not a prefix
		{errors.New("rlogind: kept"), "rlogind: kept"},       // a command's name starts the line
		{errors.New("plain"), "plain"},
	} {
		if got := Plain(tc.err); got != tc.want {
			t.Errorf("Plain(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestErrorf(t *testing.T) {
	cause := fmt.Errorf("keys: open /k: %w", fs.ErrPermission)
	err := Errorf("rlogind: cannot use the host key %s: %w", "/k", cause)
	if want := "rlogind: cannot use the host key /k: open /k: permission denied"; err.Error() != want {
		t.Errorf("Errorf: %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, cause) {
		t.Errorf("Errorf's error does not wrap %v", cause)
	}
}
