//go:build !(pam && cgo && linux)

package pamlogin

import (
	"context"
	"os"
)

// Supported is false: this build has no PAM.
const Supported = false

// Login is an authenticated user's PAM transaction; see the PAM build's documentation. In this
// build nothing makes one.
type Login struct{}

// Authenticate returns ErrUnsupported: this build has no PAM.
func Authenticate(context.Context, Config, Conversation) (*Login, error) { return nil, ErrUnsupported }

// Account returns ErrUnsupported: this build has no PAM.
func Account(context.Context, Config, Conversation) (*Login, error) { return nil, ErrUnsupported }

// User returns "".
func (*Login) User() string { return "" }

// Start returns ErrUnsupported.
func (*Login) Start(context.Context, Program) error { return ErrUnsupported }

// Process returns nil.
func (*Login) Process() *os.Process { return nil }

// Wait returns ErrUnsupported.
func (*Login) Wait() (int, error) { return 0, ErrUnsupported }

// Close does nothing.
func (*Login) Close() error { return nil }
