package classic_test

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/rlogin-go/rlogin/session/classic"
)

// The window-size message a classic client sends, and how a server takes it out of the input.
func ExampleInputFilter() {
	stream := append([]byte("ls\r"), classic.AppendWindowMessage(nil, classic.WindowSize{Rows: 50, Cols: 132})...)
	stream = append(stream, "pwd\r"...)
	var f classic.InputFilter
	for len(stream) > 0 {
		input, win, ok, n := f.Filter(nil, stream)
		stream = stream[n:]
		fmt.Printf("input %q\n", input)
		if ok {
			fmt.Printf("window %d rows, %d columns\n", win.Rows, win.Cols)
		}
	}
	// Output:
	// input "ls\r"
	// window 50 rows, 132 columns
	// input "pwd\r"
}

// A client logging in to a classic rlogind (netkit in.rlogind, say).
func ExampleClient() {
	conn, err := net.Dial("tcp", "old-host.example:513")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	c := classic.NewClient(conn, classic.Request{ClientUser: "bob", ServerUser: "bob", Term: "xterm", Speed: "38400"})
	c.Stdout = os.Stdout
	c.Window = classic.WindowSize{Rows: 24, Cols: 80}
	stdin, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		var refused *classic.RefusedError
		if errors.As(err, &refused) {
			fmt.Fprintln(os.Stderr, "refused:", refused.Reason)
		}
		return
	}
	_, _ = stdin.Write([]byte("exit\r"))
	if err := c.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
