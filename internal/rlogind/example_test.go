package rlogind_test

import (
	"context"
	"fmt"
	"io"

	"github.com/rlogin-go/rlogin/internal/rlogind"
)

// A command line rlogind does not understand is a usage error: the command prints it and
// exits with status 2.
func Example() {
	err := rlogind.Run(context.Background(), []string{"-no-such-flag"}, rlogind.Env{Stderr: io.Discard})
	fmt.Println(err)
	fmt.Println("exit status", rlogind.ExitStatus(err))
	// Output:
	// rlogind: flag provided but not defined: -no-such-flag (rlogind -h lists the flags)
	// exit status 2
}
