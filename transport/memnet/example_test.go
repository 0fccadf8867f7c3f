package memnet_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/rlogin-go/rlogin/transport/memnet"
)

// Example is an echo over an in-memory network: listen, dial, half-close.
func Example() {
	ctx := context.Background()
	var n memnet.Network
	ln, err := n.Listen(ctx, "tcp", ":0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo until the client's CloseWrite
	}()

	c, err := n.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello, memory")
	_ = c.(*memnet.Conn).CloseWrite()
	echo, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	<-done
	fmt.Println(string(echo))
	// Output:
	// hello, memory
}
