// Package session is the login protocol of rlogin and rlogind: the versioned, framed protocol that
// runs over a secure stream after the "login" mailbox and the TLS handshake (docs/protocol.md is
// its byte-by-byte specification). It carries one terminal session: a login request (user,
// terminal type, window size, locale), the answer, then terminal data both ways with window
// changes, end of input, output flushes and the shell's exit status.
//
// Typical usage, client side (conn is any net.Conn, a TLS stream in production):
//
//	c := session.NewClient(conn, session.Request{User: "bob", Term: "xterm", Window: ws, Env: os.Environ()})
//	c.Stdout = os.Stdout
//	stdin, err := c.StdinPipe()
//	...
//	if err := c.Start(ctx); err != nil {
//		var refused *session.RefusedError
//		... // errors.As(err, &refused): refused.Reason says why
//	}
//	go copyKeystrokes(stdin) // each stdin.Write leaves at once as one frame; stdin.Close = end of input
//	err = c.Wait()           // nil, *ExitError, *ClosedError or a lost connection
//
// Server side:
//
//	s := session.NewServerConn(conn)
//	req, err := s.ReadRequest() // set a deadline on conn first
//	...
//	if !allowed(req) {
//		s.Refuse("permission denied")
//		return
//	}
//	t := startShell(req) // a Terminal, such as a *pty.PTY (pty.Start(cmd, req.Window))
//	state, err := s.Serve(ctx, t)
//
// A Client or ServerConn owns its conn: it closes it when the session ends.
//
// Output flows under a credit window, so a flush on the server (Ctrl-C with the pty in packet
// mode) reaches the client behind at most a window of data, which the client drops: the prompt
// comes back at once instead of after the whole backlog. Between a Client and a ServerConn of
// this package the window grows with the link's bandwidth-delay product (up to 8 MiB; 256 KiB
// with older peers), and a Client with Interrupts set holds the output after the user's ^C until
// the server says whether the terminal flushed: on a long link the interrupted flood stops on
// the screen at once too.
//
// Each end also watches the other (Keepalive): a peer that stays silent is asked for a sign of
// life, and one that gives none for 45 seconds ends the session as a lost connection would, with
// a *NoAnswerError, so that a path that broke without a word is noticed on both ends.
//
// A session on a terminal may survive the loss of its connection (capabilities resume and
// attach). A server that sets ServerConn.Detach keeps a session whose connection was lost
// detached for Detach.Timeout: the shell runs on, its output is kept up to Detach.Buffer (the
// oldest beyond is dropped and counted), and a new connection whose Request.Resume names the
// session (ServerConn.ID) continues it through ServerConn.Attach, with every byte that the
// client had not received, and every byte of its input that the server had not, exactly once.
// A Client with Reconnect set does that by itself when its connection fails:
//
//	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
//		... // wait (backoff), show a status line, dial, secure and authenticate a new conn
//	}
//
// and on the server, for each new connection that asks to resume:
//
//	req, err := next.ReadRequest()
//	... // authenticate it as for a login; look req.Resume.ID up among the user's sessions
//	err = s.Attach(next, false, "resumed from "+addr) // s: the session's ServerConn
//
// A new client takes a detached (or attached) session over with a Request.Resume without a
// secret, once its caller has checked that the user is the session's; ListSessions lists them
// (the server answers with ServerConn.SendSessions).
//
// A Request with a Command asks for that command in place of a login shell (capability exec):
// without a terminal, a server's Terminal that is also an ErrorOutputReader sends the command's
// error output apart (the Client's Stderr), the Client's end of input is the command's, and
// Client.Signal passes a signal on; Wait returns the command's status as a shell's. A server
// opts in with ServerConn.RunsCommands; an older server makes Start return
// ErrCommandsUnsupported before any input is sent.
//
// The rules for the request's fields are this package's, with their limits, for every program
// of this module: ValidUserName, ValidTerminalType and TerminalTypeOrDumb, ValidLocaleVar and
// LocaleEnv. The classic protocol (package classic) uses the same ones.
package session
