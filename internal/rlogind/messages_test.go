package rlogind

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/rlogin-go/rlogin/keys"
)

// TestRunMessages checks what rlogind says about a command line it cannot serve: "rlogind: ",
// once, then the user's words, with no package prefix of the errors underneath (issue 11).
func TestRunMessages(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	openKey := filepath.Join(home, "open_key")
	if _, _, err := keys.LoadOrCreate(openKey); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		status int
		cause  func(error) bool // the chain keeps the cause, for errors.Is and As
	}{
		{"host key too open", []string{"-host-key", openKey},
			`rlogind: cannot use the host key: permissions 0644 for "` + openKey + `" are too open: ` +
				"a private key file must not be accessible by group or others (chmod 600 it)", 1, nil},
		{"bad max-startups", []string{"-max-startups", "1:2"},
			`rlogind: invalid value "1:2" for -max-startups: want start:rate:full or a number (rlogind -h lists the flags)`, 2,
			func(err error) bool { var ve *valueError; return errors.As(err, &ve) && ve.err != nil }},
		{"bad per-source-penalties", []string{"-per-source-penalties", "bogus"},
			`rlogind: invalid value "bogus" for -per-source-penalties: want keyword:value (rlogind -h lists the flags)`, 2, nil},
		{"bad duration", []string{"-stop-grace", "soon"},
			`rlogind: invalid value "soon" for -stop-grace: parse error (rlogind -h lists the flags)`, 2, nil},
		{"bad address", []string{"-addr", "nonsense:99999"},
			"rlogind: cannot listen on nonsense:99999: listen tcp: address 99999: invalid port", 1,
			func(err error) bool { var ae *net.AddrError; return errors.As(err, &ae) }},
		{"bad permit-root-login", []string{"-permit-root-login", "maybe"},
			`rlogind: permit-root-login "maybe": want no, prohibit-password or yes`, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-user-mode", "-config", "none", "-addr", "127.0.0.1:0"}, tc.args...)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // should it serve after all, it stops at once
			err := Run(ctx, args, Env{Stderr: io.Discard})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run %q:\n got %v\nwant %s", tc.args, err, tc.want)
			}
			if got := ExitStatus(err); got != tc.status {
				t.Errorf("exit status %d, want %d", got, tc.status)
			}
			if tc.cause != nil && !tc.cause(err) {
				t.Errorf("%v does not wrap its cause", err)
			}
		})
	}
}

// TestRunBadRootLoginCreatesNothing checks that a bad -permit-root-login is refused before any
// file is made: not even the host key of a first start.
func TestRunBadRootLoginCreatesNothing(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	hostKey := filepath.Join(home, "host_key")
	args := []string{"-config", "none", "-addr", "127.0.0.1:0", "-host-key", hostKey, "-permit-root-login", "maybe"}
	for _, mode := range [][]string{nil, {"-user-mode"}} {
		err := Run(context.Background(), append(mode, args...), Env{Stderr: io.Discard})
		if ExitStatus(err) != 2 {
			t.Fatalf("Run %q: %v, want a usage error", mode, err)
		}
		if _, err := os.Stat(hostKey); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Run %q left the host key behind (%v)", mode, err)
		}
		entries, _ := os.ReadDir(home)
		if len(entries) != 0 {
			t.Fatalf("Run %q left files in the home directory: %v", mode, entries)
		}
	}
}
