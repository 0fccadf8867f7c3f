// Package systemlogin answers how a system user logs in: through the machine's own login(1), on
// a new pseudo-terminal, as in.rlogind and telnetd do. It looks users up in the passwd
// database, honours the nologin files, starts "login -p -h HOST [-f] -- USER" with a clean
// environment, stands the password gate between the client and login(1) for a password login,
// and writes the logout record login(1) leaves to whoever started it.
//
// Typical usage (the daemon, as root, once it has authorized a login):
//
//	u, err := systemlogin.LookupUser(name) // name already a valid user name
//	...
//	if msg, refused := systemlogin.Nologin(); refused && u.UID != 0 {
//		// refuse the client with msg
//	}
//	l := &systemlogin.Login{User: u, Password: !keyAuthorized, Host: systemlogin.PeerHost(conn.RemoteAddr())}
//	cmd, p, err := systemlogin.Start(systemlogin.DefaultProgram, l, systemlogin.Request{Term: "xterm", Window: size})
//	...
//	sess, err := systemlogin.NewSession(logger, p, l, graceDeadline)
//	...
//	serve(sess.Terminal()) // the password gate until the session starts, then the pty
//	sess.Finish()          // stops the gate, writes the logout record
//	err = p.End(stopGrace) // ends what is left of the session: SIGHUP, then SIGKILL
//
// Why login(1), and not setuid in a child: a login must go through the machine's own login
// machinery, and a Go program cannot run PAM without cgo. With login(1), PAM's account and
// session rules apply, wtmp and lastlog record the session, the message of the day appears and
// the terminal is handed to the user, as for any other login. The costs: the exit status is
// login's, "login -f" does not check /etc/nologin (Nologin does), and after a wrong password
// login(1) asks for any user name, which the password gate never lets through (see
// docs/system-mode.md). Everything here needs root and Linux; on other systems password logins
// fail to start.
package systemlogin
