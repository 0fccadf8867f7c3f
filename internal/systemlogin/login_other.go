//go:build !linux

package systemlogin

import (
	"errors"
	"log/slog"
	"time"

	"github.com/rlogin-go/rlogin/pty"
)

// System mode is refused by checkSystem on this platform; these stand in for the Linux parts.

const (
	utmpPath = "/var/run/utmp"
	wtmpPath = "/var/log/wtmp"
)

type loginGate struct{ *pty.PTY }

func (g *loginGate) TryWrite([]byte) (int, error) { return 0, nil }

func newLoginGate(*slog.Logger, *pty.PTY, string, int, time.Time, func(), func()) (*loginGate, error) {
	return nil, errors.New("systemlogin: password logins are supported on Linux only")
}

func (g *loginGate) close() {}

func recordLogout(string, string, string, int, time.Time) error { return nil }

func recordLogin(string, string, string, string, int, time.Time) error { return nil }
