package session_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// storyteller is a Terminal whose shell prints the lines it is given and exits with status 0
// once there are no more. A real server uses a pty.
type storyteller struct {
	greeter
	lines chan string
}

func (s *storyteller) ReadOutput(b []byte) (int, bool, error) {
	line, ok := <-s.lines
	if !ok {
		_, _ = s.Wait()
		return 0, false, io.EOF
	}
	return copy(b, line), false, nil
}

// printer writes to os.Stdout, and says so on written.
type printer chan struct{}

func (p printer) Write(b []byte) (int, error) {
	defer func() { p <- struct{}{} }()
	return os.Stdout.Write(b)
}

// A session survives the loss of its connection: the server keeps it detached, the client
// reconnects by itself, and the output goes on where it stopped.
func ExampleServerConn_Attach() {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	shell := &storyteller{greeter: greeter{cmd: cmd}, lines: make(chan string)}

	// The server: the first conn starts the session; a conn that asks to resume it is handed to
	// it (a real server authenticates that conn as the session's user first).
	var first *session.ServerConn
	var wg sync.WaitGroup
	serve := func(conn net.Conn) {
		defer wg.Done()
		s := session.NewServerConn(conn)
		req, err := s.ReadRequest()
		switch {
		case err != nil:
		case req.Resume == nil:
			s.Detach = session.Detach{Timeout: time.Minute}
			first = s
			_, _ = s.Serve(context.Background(), shell)
		default:
			if err := first.Attach(s, false, "resumed from elsewhere"); err != nil {
				fmt.Println(err)
			}
		}
	}
	dial := func() net.Conn {
		clientConn, serverConn := net.Pipe()
		wg.Add(1)
		go serve(serverConn)
		return clientConn
	}

	conn := dial()
	c := session.NewClient(conn, session.Request{User: "bob", Term: "xterm"})
	written := make(printer, 10)
	c.Stdout = written
	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		return dial(), nil // a real client dials, secures and authenticates a new conn
	}
	c.Resumed = func(skipped uint64) { fmt.Printf("resumed, %d bytes skipped\n", skipped) }
	if err := c.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	shell.lines <- "one\n"
	<-written
	_ = conn.Close() // the connection is lost
	shell.lines <- "two\n"
	close(shell.lines)
	fmt.Println("exit:", c.Wait())
	wg.Wait()
	// Output:
	// one
	// resumed, 0 bytes skipped
	// two
	// exit: <nil>
}
