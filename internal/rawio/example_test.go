package rawio_test

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"

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

func ExampleWatch() {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		panic(err)
	}
	r, w := p[0], p[1]
	defer unix.Close(r)
	defer unix.Close(w)

	// Watch the read end for input, only while a Do waits.
	watch, err := rawio.NewWatch(r, unix.EPOLLIN, rawio.WatchWhileWaiting)
	if err != nil {
		panic(err)
	}
	defer watch.Close()

	go func() { _, _ = unix.Write(w, []byte("hello")) }()
	buf := make([]byte, 16)
	var n int
	var readErr error
	if err := watch.Do(func() bool {
		n, readErr = rawio.Read(r, buf)
		return readErr != unix.EAGAIN // else wait for input
	}); err != nil {
		panic(err)
	}
	fmt.Printf("%q %v\n", buf[:n], readErr)
	// Output: "hello" <nil>
}
