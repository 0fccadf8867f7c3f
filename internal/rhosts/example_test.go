package rhosts_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/rlogin-go/rlogin/internal/rhosts"
	"github.com/rlogin-go/rlogin/internal/userfile"
)

// A client from an ordinary port is never trusted, whatever the files say.
func ExampleCheck() {
	var files userfile.Reader // one per daemon: it bounds the reads of each user's files
	why := rhosts.Check(context.Background(), slog.New(slog.DiscardHandler), &files, rhosts.Request{
		User: "alice", UID: 1000, Home: "/home/alice",
		RemoteUser: "alice",
		Peer:       &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000},
	})
	fmt.Println(why)
	// Output:
	// the client's port is not privileged (512-1023)
}
