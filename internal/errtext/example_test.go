package errtext_test

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/rlogin-go/rlogin/internal/errtext"
)

func ExampleErrorf() {
	cause := fmt.Errorf("transport: listen tcp: %w", fs.ErrPermission)
	err := errtext.Errorf("rlogind: cannot listen on %s: %w", ":513", cause)
	fmt.Println(err)
	fmt.Println(errors.Is(err, fs.ErrPermission))
	// Output:
	// rlogind: cannot listen on :513: listen tcp: permission denied
	// true
}

func ExamplePlain() {
	fmt.Println(errtext.Plain(fmt.Errorf("session: connection lost: %w", errors.New("EOF"))))
	// Output: connection lost: EOF
}
