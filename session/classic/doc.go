// Package classic is BSD rlogin's own protocol (RFC 1282), both sides, so that rlogin and rlogind
// can talk to the rlogin peers that exist (netkit, GNU inetutils, the BSDs). It is plaintext and
// has no authentication of its own: use it only where the secure protocol (package session)
// cannot be, and only on networks where anyone who can see or inject the traffic is trusted.
//
// Typical usage, client side (conn from transport.Dial, preferably from a port in 512-1023):
//
//	c := classic.NewClient(conn, classic.Request{ClientUser: "bob", ServerUser: "bob", Term: "xterm", Speed: "38400"})
//	c.Stdout = os.Stdout
//	c.Window = size
//	c.OnFlush = func() { /* tcflush the terminal's output */ }
//	stdin, _ := c.StdinPipe()
//	if err := c.Start(ctx); err != nil {
//		var refused *classic.RefusedError
//		... // errors.As(err, &refused): refused.Reason is the server's message
//	}
//	go copyKeystrokes(stdin) // each Write leaves at once
//	err = c.Wait()           // nil when the server closed the connection
//
// Server side:
//
//	s := classic.NewServerConn(conn)
//	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
//	req, err := s.ReadRequest() // malformed handshakes are refused and closed already
//	...
//	if !allowed(req) {
//		s.Refuse("Permission denied.")
//		return
//	}
//	_ = conn.SetDeadline(time.Time{})
//	t := startLogin(req) // a Terminal: a pty in packet mode running login(1)
//	state, err := s.Serve(ctx, t)
//
// A Client or ServerConn owns its conn and closes it when the session ends.
//
// The protocol, as this package speaks it:
//
//   - The client sends a NUL, then three NUL-terminated strings: its local user name, the user
//     to log in as, and "terminal-type/speed" ("\x00bob\x00bob\x00xterm/38400\x00"). A server
//     reads it under a deadline, with netkit in.rlogind's bounds: user names of at most 32 bytes
//     (session.MaxUserLen), the terminal field at most 256 (session.MaxTermLen). User names must
//     pass session.ValidUserName (portable names that do not start with '-', so "-froot" never
//     reaches login(1), CVE-1999-0113); the terminal type is empty or passes
//     session.ValidTerminalType (printable ASCII without spaces or '/'). A terminal field with a
//     '/' and no speed ("xterm/") reads as the type alone, as netkit in.rlogind reads it.
//   - The server answers one NUL byte, or 0x01, a message and CR LF, and closes.
//   - The session is then raw bytes both ways, with two additions. The server sends control
//     bytes as TCP urgent data (MSG_OOB), the pty's packet-mode bits: 0x02 flush (the client
//     drops its pending output and the data up to the urgent mark: ^C during a flood stops the
//     screen at once), 0x10 and 0x20 (the client switches its local ^S/^Q flow control off and
//     on), 0x80 (send window sizes; this server sends it with the first output from
//     WindowRequestDelay after the NUL on: netkit rlogin misses one that comes at once). The client sends
//     window sizes in band: FF FF 's' 's' and rows, cols, xpixel, ypixel as big-endian uint16, 12
//     bytes, at once and at each change.
//
// RFC 1282's own limit: user data that contains FF FF 73 73 followed by 8 more bytes cannot be
// told from a window-size message, and there is no way to escape it. This package's server takes
// such bytes as a window-size message wherever they occur, also when split across reads (classic
// servers see a message only when all 12 bytes arrive in one read): the 12 bytes never reach the
// terminal, and the terminal takes whatever size the last 8 say. Every other byte, FF included,
// reaches the terminal unchanged; a possible message start held at the end of a read is passed on
// after HoldTimeout if nothing completes it. See InputFilter.
//
// Urgent data needs a TCP socket; see urgent_linux.go for how it is read and sent around Go's
// netpoller (in short: the client waits in poll(2) for POLLPRI and POLLIN on its own goroutine).
package classic
