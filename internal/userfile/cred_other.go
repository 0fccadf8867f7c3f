//go:build !linux

package userfile

import (
	"errors"
	"os"
)

// asUser runs fn. Reading as another user needs per-thread file-system credentials, which only
// Linux has: a root daemon is refused, as package systemlogin refuses system mode here.
func asUser(uid int, fn func() error) error {
	if os.Geteuid() == 0 && uid != 0 {
		return errors.New("userfile: reading a user's files as the user is supported only on Linux")
	}
	return fn()
}
