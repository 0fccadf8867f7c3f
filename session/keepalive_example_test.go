package session_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// A client that gives a silent server up after 2 seconds rather than 45: here the server
// accepts the login and then says nothing more, as a server behind a path that broke does.
func ExampleKeepalive() {
	clientConn, serverConn := net.Pipe()
	go func() { // a server that answers the login, then goes silent (reading, never writing)
		b := make([]byte, 512)
		_, _ = serverConn.Read(b) // the version and the LOGIN
		// Version 1, ACCEPT with capability keepalive.
		_, _ = serverConn.Write([]byte{1, 0x02, 0, 0, 11, 1, 9, 'k', 'e', 'e', 'p', 'a', 'l', 'i', 'v', 'e'})
		for {
			if _, err := serverConn.Read(b); err != nil {
				return
			}
		}
	}()
	c := session.NewClient(clientConn, session.Request{User: "bob", Term: "xterm"})
	c.Keepalive = session.Keepalive{Interval: time.Second, CountMax: 2}
	if err := c.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	err := c.Wait()
	var noAnswer *session.NoAnswerError
	fmt.Println(errors.As(err, &noAnswer), err)
	// Output:
	// true session: connection lost: no answer from the peer for 2s
}
