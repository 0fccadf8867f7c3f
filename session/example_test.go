package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/rlogin-go/rlogin/session"
)

// greeter is a Terminal whose shell prints a greeting and exits with status 3. A real server uses
// a pty in packet mode.
type greeter struct {
	cmd      *exec.Cmd
	mu       sync.Mutex
	greeted  bool
	waitOnce sync.Once
	state    *os.ProcessState
}

func (g *greeter) ReadOutput(b []byte) (int, bool, error) {
	g.mu.Lock()
	greeted := g.greeted
	g.greeted = true
	g.mu.Unlock()
	if !greeted {
		return copy(b, "hello, bob\n"), false, nil
	}
	_, _ = g.Wait() // the output is over once the shell is reaped
	return 0, false, io.EOF
}

func (g *greeter) Write(b []byte) (int, error)     { return len(b), nil }
func (g *greeter) Resize(session.WindowSize) error { return nil }
func (g *greeter) SendEOF() error                  { return nil }
func (g *greeter) Hangup()                         {}
func (g *greeter) Close() error                    { return nil }
func (g *greeter) Kill()                           { _ = g.cmd.Process.Kill() } // after the reap: ErrProcessDone
func (g *greeter) Wait() (*os.ProcessState, error) {
	g.waitOnce.Do(func() {
		_ = g.cmd.Wait()
		g.state = g.cmd.ProcessState
	})
	return g.state, nil
}

// A client and a server over an in-memory connection.
func Example() {
	clientConn, serverConn := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s := session.NewServerConn(serverConn)
		req, err := s.ReadRequest()
		if err != nil {
			return
		}
		if req.User != "bob" {
			_ = s.Refuse("unknown user")
			return
		}
		cmd := exec.Command("sh", "-c", "exit 3")
		if err := cmd.Start(); err != nil {
			_ = s.Refuse("cannot start the shell")
			return
		}
		_, _ = s.Serve(context.Background(), &greeter{cmd: cmd})
	}()

	c := session.NewClient(clientConn, session.Request{User: "bob", Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	c.Stdout = os.Stdout
	err := c.Run(context.Background())
	<-served
	var exit *session.ExitError
	if errors.As(err, &exit) {
		fmt.Println("exit code", exit.ExitCode())
	}
	// Output:
	// hello, bob
	// exit code 3
}

// A refused login: the client gets the server's reason.
func ExampleRefusedError() {
	clientConn, serverConn := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s := session.NewServerConn(serverConn)
		if _, err := s.ReadRequest(); err == nil {
			_ = s.Refuse("user mallory may not log in")
		}
	}()
	c := session.NewClient(clientConn, session.Request{User: "mallory"})
	err := c.Start(context.Background())
	<-served
	var refused *session.RefusedError
	if errors.As(err, &refused) {
		fmt.Println("refused:", refused.Reason) // from the peer: show it through sanitize.Text
	}
	// Output:
	// refused: user mallory may not log in
}

// The rules of a login request's fields, as every program of this module applies them: a server
// refuses a user name that is not portable, gives the shell "dumb" for a terminal type it cannot
// use, and passes on the locale variables the protocol carries.
func ExampleValidUserName() {
	for _, name := range []string{"bob", "_apt", "-froot", "bob smith", "root;id"} {
		fmt.Printf("%q %v\n", name, session.ValidUserName(name))
	}
	fmt.Println(session.TerminalTypeOrDumb("xterm-256color"), session.TerminalTypeOrDumb("../../tmp/x"), session.TerminalTypeOrDumb(""))
	fmt.Println(session.LocaleEnv([]string{"PATH=/bin", "LANG=C.UTF-8", "LC_TIME=\u00e9t\u00e9", "LANG=de_DE", "LC_ALL=C"}))
	// Output:
	// "bob" true
	// "_apt" true
	// "-froot" false
	// "bob smith" false
	// "root;id" false
	// xterm-256color dumb dumb
	// [LANG=C.UTF-8 LC_ALL=C]
}

// reporter is a Terminal with error output, for a command without a terminal: it writes "out" to
// its output and "err" to its error output, and exits with status 5. A real server runs the
// command on pipes.
type reporter struct {
	greeter
	errOnce sync.Once
}

func (r *reporter) ReadErrorOutput(b []byte) (int, error) {
	n := 0
	r.errOnce.Do(func() { n = copy(b, "err\n") })
	if n > 0 {
		return n, nil
	}
	return 0, io.EOF
}

// A command in place of a login shell (capability exec): the client gets its output, its error
// output apart, and its exit status.
func ExampleCommand() {
	clientConn, serverConn := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s := session.NewServerConn(serverConn)
		s.RunsCommands = true // this server runs req.Command
		req, err := s.ReadRequest()
		if err != nil || req.Command == nil {
			return
		}
		cmd := exec.Command("sh", "-c", "exit 5") // a real server: $SHELL -c req.Command.Line
		if err := cmd.Start(); err != nil {
			_ = s.Refuse("cannot start the command")
			return
		}
		t := &reporter{greeter: greeter{cmd: cmd}}
		_, _ = s.Serve(context.Background(), t)
	}()

	var stdout, stderr strings.Builder
	c := session.NewClient(clientConn, session.Request{User: "bob", Command: &session.Command{Line: "report"}})
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run(context.Background())
	<-served
	var exit *session.ExitError
	if errors.As(err, &exit) {
		fmt.Printf("stdout %q, stderr %q, exit code %d\n", stdout.String(), stderr.String(), exit.ExitCode())
	}
	// Output:
	// stdout "hello, bob\n", stderr "err\n", exit code 5
}
