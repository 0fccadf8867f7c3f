package connctx_test

import (
	"context"
	"fmt"
	"net"

	"github.com/rlogin-go/rlogin/internal/connctx"
)

// A read that would wait forever for a peer that says nothing ends when its context is
// cancelled.
func ExampleDo() {
	conn, peer := net.Pipe()
	defer peer.Close()
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err := connctx.Do(ctx, conn, func() error {
		cancel() // as if the user gave up while the read waits
		_, err := conn.Read(make([]byte, 1))
		return err
	})
	fmt.Println(err, err == context.Cause(ctx))
	// Output: context canceled true
}
