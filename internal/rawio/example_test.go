package rawio_test

import (
	"fmt"
	"net"

	"github.com/rlogin-go/rlogin/internal/rawio"
)

func ExampleNewConn() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello"))
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	rc, ok := rawio.NewConn(c) // a TCP conn has a descriptor
	if !ok {
		panic("no descriptor")
	}
	defer rc.Close()
	buf := make([]byte, 5)
	n, err := rc.Read(buf)
	fmt.Println(string(buf[:n]), err)
	// Output: hello <nil>
}
