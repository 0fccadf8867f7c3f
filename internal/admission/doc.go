// Package admission decides how many connections may try to log in, and for how long, before
// they authenticate: sshd's MaxStartups, PerSourceMaxStartups, PerSourceNetBlockSize,
// PerSourcePenalties and LoginGraceTime, applied to the raw connections of a listener.
//
// Typical usage:
//
//	lim, err := admission.NewLimiter(admission.Limits{LoginGraceTime: 30 * time.Second}, logger)
//	...
//	l := lim.Listener(rawListener) // drops, with a one-line reason, what the limits refuse
//	c, err := l.Accept()
//	ac := admission.ConnOf(c) // c itself here; under a transport.Mux, the conn it wraps
//	// ... the login, under ac.GraceDeadline() (the conn clamps every deadline to it) ...
//	ac.Authenticated() // or ac.Failed(): the source is penalized when c closes
//	ac.StartSession()  // no longer unauthenticated; deadlines are the session's own
//
// Every admitted connection counts as unauthenticated from accept until StartSession or its
// Close: new connections are dropped at random once many are unauthenticated
// (Limits.MaxStartups, sshd's start:rate:full), one source (an IPv4 address, an IPv6 /64: see
// NetBlockSize) may hold only a few of them (Limits.PerSourceMaxStartups), and a source whose
// connections ended without logging in is refused for a while (Limits.Penalties, sshd's
// PerSourcePenalties). Until it enters a session a connection cannot take a deadline later than
// its login grace deadline, counted from accept, whoever sets it; so a mailbox exchange, a TLS
// handshake or a login request that stalls ends there.
//
// A Limiter's counts and penalties are shared by all the listeners it wraps; Configure changes
// the limits at once for the connections accepted afterwards (a reload).
//
// Under a transport.Mux (as in rlogind), the Limiter's listener goes under the Mux, so that a
// dropped client gets its reason before any name exchange, and the Mux's own limits are set from
// the same Limits: NameTimeout = LoginGraceTime (the Conn clamps the Mux's deadline to the grace
// deadline anyway) and MaxPending = MaxStartups.Full (a conn in the name exchange is
// unauthenticated, and the Limiter never lets more than Full of those in), so the Mux never
// refuses a connection the Limiter admitted.
package admission
