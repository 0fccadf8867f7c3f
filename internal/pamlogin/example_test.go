package pamlogin_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
)

// terminalConversation asks on the process's own terminal; a daemon relays to its client.
type terminalConversation struct{}

func (terminalConversation) Prompt(ctx context.Context, text string, echo bool) (string, error) {
	fmt.Print(text)
	var answer string
	_, err := fmt.Scanln(&answer) // a real one turns echo off when !echo, and honours ctx
	return answer, err
}

func (terminalConversation) Info(ctx context.Context, text string) error {
	fmt.Println(text)
	return nil
}

func (terminalConversation) Error(ctx context.Context, text string) error {
	fmt.Fprintln(os.Stderr, text)
	return nil
}

// A password login that runs one command as the user, without a terminal, and reports its
// exit status as rlogin would. Start belongs on the main thread (pam_loginuid): this runs from
// main.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the login's grace time
	defer cancel()
	status, err := runAs(ctx, "alice", "id")
	if err != nil {
		// A refusal (errors.Is(err, pamlogin.ErrRefused)) ends with PAM's reason and comes
		// after PAM's delay; a build without PAM returns pamlogin.ErrUnsupported.
		fmt.Fprintln(os.Stderr, err)
		status = 255
	}
	fmt.Println("exit status", status)
}

// runAs logs name in with a password and runs command as that user.
func runAs(ctx context.Context, name, command string) (int, error) {
	l, err := pamlogin.Authenticate(ctx, pamlogin.Config{User: name, RemoteHost: "client.example"}, terminalConversation{})
	if err != nil {
		return 0, err
	}
	defer l.Close() // in every case: the program, the session, the transaction
	if err := l.Start(ctx, pamlogin.Program{Command: command, Stdout: os.Stdout, Stderr: os.Stderr}); err != nil {
		return 0, err
	}
	return l.Wait() // its status, 128+n for a signal n; the session is closed
}
