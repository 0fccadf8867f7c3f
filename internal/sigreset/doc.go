// Package sigreset gives the programs a daemon starts the signal settings of a
// fresh login, whatever signal settings the daemon itself inherited.
//
// Ignored signals (SIG_IGN) and the blocked-signal mask survive execve. A daemon
// started with nohup ignores SIGHUP; one started with & from a non-interactive
// script ignores SIGINT and SIGQUIT; a service manager or a parent program may
// leave signals blocked. Without Reset, the shells the daemon starts would inherit
// all that: the user's ^C would do nothing, a hangup would not end the session.
//
// Typical usage, first thing in main:
//
//	func main() {
//		if err := sigreset.Reset(); err != nil {
//			log.Printf("rlogind: %v", err)
//		}
//		os.Exit(run(os.Args[1:]))
//	}
//
// Reset may re-execute the program (same binary, arguments and environment), so it
// must run before the program has done anything it would not want to do twice.
package sigreset
