// Package rhosts answers whom BSD's trust files let in without a password: a classic rlogin
// client (RFC 1282) connecting from a privileged port, whose host and user /etc/hosts.equiv or
// the local user's ~/.rhosts lists, as ruserok(3) decides it, minus its wildcards and netgroups.
//
// Typical usage (the classic rlogin service, after the handshake):
//
//	why := rhosts.Check(ctx, logger, files, rhosts.Request{ // ctx: the login's grace deadline
//		User: "alice", UID: 1000, Home: "/home/alice", // the local user
//		RemoteUser: req.ClientUser,                    // the client's user
//		Peer:       conn.RemoteAddr(),                 // TCP, from a port in 512-1023
//	})
//	if why != "" {
//		// not trusted: ask for the password, or refuse
//	}
//
// The trust is as weak as it always was: anyone who can use a privileged port on a trusted host,
// or take over one of its addresses, is let in. A trust file is used only if it is a regular
// file owned by the user or root and writable by nobody else; hosts.equiv never lets root in.
// Both are read with the user's rights, non-blocking and before the login's deadline, by the
// daemon's userfile.Reader (files above), so a .rhosts that leads to a FIFO or a /proc file
// cannot hold the login.
package rhosts
