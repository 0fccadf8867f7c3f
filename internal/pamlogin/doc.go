// Package pamlogin logs a system user in through PAM, the way sshd does: it runs the
// authentication and account stacks with a conversation the caller relays to the client (prompt
// text, echo on or off), and for an authenticated user it opens the PAM session and starts the
// user's program as the user, on the session's terminal or on given files.
//
// Typical usage (a privileged process serving one connection, as root):
//
//	cfg := pamlogin.Config{User: name, RemoteHost: host} // Service "" is DefaultService
//	l, err := pamlogin.Authenticate(ctx, cfg, conv)   // password login; Account for a key login
//	if err != nil {
//		// errors.Is(err, pamlogin.ErrRefused): tell the client err's reason, exit 255
//		return err
//	}
//	defer l.Close() // ends a program still running and the PAM transaction, whatever happened
//	// On the main thread (runtime.LockOSThread in init, called from main): pam_loginuid.
//	if err := l.Start(ctx, pamlogin.Program{TTY: slave, Term: "xterm"}); err != nil {
//		return err
//	}
//	status, err := l.Wait() // the program's exit status, 128+n for a signal n; closes the session
//
// conv implements Conversation: PAM's prompts ("Password: ", echo off), its information and
// error messages (the message of the day comes from the session stack as information) go to the
// client, and its answers come back. Every call honours ctx: when it ends, the conversation
// fails, PAM's stack gives up and the PAM transaction is ended before the call returns.
//
// A failed authentication is answered after the delay the PAM stack asks for (pam_faildelay,
// pam_unix's own), served in Go so that a context that ends cuts it short, and counted from
// the user's last answer, so that the time PAM spent checking it does not show; a user name
// that does not exist goes through the same prompts, the same delay and the same refusal as a
// known one with a wrong password (pam_unix asks for the password of an unknown user too, but
// hashes only a known one's: measured 3-9 ms against 36-100 ms of work before the delay).
//
// Start opens the session on the process's main thread because the kernel lets only that
// thread set the login uid (pam_loginuid is in login's stack): a process that uses this package
// locks its main goroutine to the main thread in an init function and calls Start from it. A
// login whose calls all come from there (Authenticate or Account, Start, Wait) runs its whole
// PAM transaction on that one thread, as login(1) and sshd do, since modules may keep
// per-thread state from one call to the next. Calls from other goroutines run on threads of
// their own, which end with the call, so that the thread state PAM modules change (file system
// ids, keyrings) never reaches other goroutines.
//
// A caller that keeps the program's terminal and process operations itself (a privileged monitor
// that hands the terminal to another process) gives Start a Starter: Start builds the command
// (credentials, environment, directory) and the Starter starts and reaps it (with package pty's
// OpenContained, say, so that the session has its cgroup).
//
// The default build (no cgo, or without the "pam" build tag) has the same API, Supported is
// false there, and every call returns ErrUnsupported: a PAM build needs gcc, the PAM headers
// (Debian: libpam0g-dev) and
//
//	go build -tags pam ./cmd/rlogind
//
// Only Linux is supported.
package pamlogin
