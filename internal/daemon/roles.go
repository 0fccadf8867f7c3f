package daemon

import (
	"fmt"
	"os"
	"runtime"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
)

// Privilege separation (System mode with Config.PrivilegeSeparation): the processes of one
// connection. See docs/system-mode.md, "Privilege separation", for the picture.
//
//	rlogind, the listener (root)       accepts; the limits before authentication; parses nothing
//	  monitor, one per connection (root; separate.go starts it, monitor.go is its work)
//	    net child (its own uid, sandboxed; netchild.go)
//	    the user's session: the shell (a build with PAM), or login(1) and the shell, on the
//	    pty the monitor holds
//
// The monitor and the net child are this same program started again: the executable finds its
// role in the environment variable roleEnv, which only the daemon sets, and its descriptors at
// fixed numbers (ExtraFiles). RunRole runs the role, if any, before anything else.

// roleEnv names the role of a process started by a privilege-separated daemon.
const roleEnv = "RLOGIND_PRIVSEP_ROLE"

// The roles.
const (
	roleMonitor = "monitor"
	roleNet     = "net"
)

// Descriptors a monitor starts with (exec.Cmd.ExtraFiles: 3 and up).
const (
	monitorConnFD    = 3 // the client's connection, unread
	monitorControlFD = 4 // a SOCK_SEQPACKET socket to the listener (controlEvent)
	monitorConfigFD  = 5 // a pipe with the monitor's configuration (monitorConfig, JSON)
)

// Descriptors a net child starts with (privsep.NetCommand's order).
const (
	netChannelFD = 3 // its end of the privsep.Channel to the monitor (privsep.ChannelFD)
	netConnFD    = 4 // the client's connection
)

// processTitle is the first word of a monitor's command line, what ps(1) shows and what
// EndSessions looks for: "rlogind: session".
const processTitle = "rlogind: session"

// In a build with PAM, the main goroutine stays on the main thread, locked to it before main
// runs: a monitor (RunRole, or ServeConn for inetd, called from main) makes every PAM call of its
// login from there (package pamlogin: pam_loginuid may set the login uid from the main thread
// only, and modules may keep per-thread state from one call of the transaction to the next).
func init() {
	if pamlogin.Supported {
		runtime.LockOSThread()
	}
}

// RunRole runs this process's role if a privilege-separated daemon started it as one of its
// processes (a monitor or a net child), and returns true and its exit status then; otherwise it
// returns false at once. A program that serves System logins with PrivilegeSeparation (package
// rlogind's Main, and tests that run a Server in their own binary) calls it first thing in main
// (or TestMain).
func RunRole() (ran bool, status int) {
	role, ok := os.LookupEnv(roleEnv)
	if !ok {
		return false, 0
	}
	_ = os.Unsetenv(roleEnv) // nothing the role starts inherits it
	switch role {
	case roleMonitor:
		return true, runMonitor()
	case roleNet:
		return true, runNetChild()
	}
	fmt.Fprintf(os.Stderr, "rlogind: unknown process role %q in %s\n", role, roleEnv)
	return true, 2
}
