package linkemu_test

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// A client talks to an echo server across a 100 ms round trip, then the path goes dead and
// comes back.
func Example() {
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer server.Close()
	go func() { // an echo server
		c, err := server.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	link := linkemu.New(linkemu.Profile{Delay: 50 * time.Millisecond})
	proxy, err := link.Listen("127.0.0.1:0", server.Addr().String())
	if err != nil {
		panic(err)
	}
	defer proxy.Close()
	conn, err := net.Dial("tcp", proxy.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	start := time.Now()
	buf := make([]byte, 5)
	_, _ = conn.Write([]byte("hello"))
	_, _ = io.ReadFull(conn, buf)
	fmt.Printf("%s after at least 100ms: %v\n", buf, time.Since(start) >= 100*time.Millisecond)

	link.Blackhole()
	_, _ = conn.Write([]byte("again"))
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = conn.Read(buf)
	fmt.Println("during the blackhole:", err.(net.Error).Timeout())

	link.Restore()
	_ = conn.SetReadDeadline(time.Time{})
	_, _ = io.ReadFull(conn, buf)
	fmt.Printf("after Restore: %s\n", buf)
	// Output:
	// hello after at least 100ms: true
	// during the blackhole: true
	// after Restore: again
}
