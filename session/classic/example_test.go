package classic_test

import (
	"context"
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
	if err := c.Start(context.Background()); err != nil {
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

// The handshake a classic client sends. Without a Speed no '/' is sent (a server reads a field
// "xterm/" from other clients as the type alone, as netkit in.rlogind does), and a user name that
// could pass for an option of login(1) is never sent.
func ExampleAppendRequest() {
	b, err := classic.AppendRequest(nil, &classic.Request{ClientUser: "bob", ServerUser: "alice", Term: "xterm", Speed: "38400"})
	fmt.Printf("%q %v\n", b, err)
	b, err = classic.AppendRequest(nil, &classic.Request{ClientUser: "bob", ServerUser: "alice", Term: "xterm"})
	fmt.Printf("%q %v\n", b, err)
	_, err = classic.AppendRequest(nil, &classic.Request{ClientUser: "bob", ServerUser: "-froot", Term: "xterm"})
	fmt.Println(err)
	// Output:
	// "\x00bob\x00alice\x00xterm/38400\x00" <nil>
	// "\x00bob\x00alice\x00xterm\x00" <nil>
	// classic: bad handshake: invalid server user name
}
