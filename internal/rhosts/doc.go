// Package rhosts answers whom BSD's trust files let in without a password: a classic rlogin
// client (RFC 1282) connecting from a privileged port, whose host and user /etc/hosts.equiv or
// the local user's ~/.rhosts lists, as ruserok(3) decides it, minus its wildcards and netgroups.
//
// Typical usage (the classic rlogin service, after the handshake):
//
//	why := rhosts.Check(logger, rhosts.Request{
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
package rhosts
