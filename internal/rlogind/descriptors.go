package rlogind

import (
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/inheritedfd"
	"github.com/rlogin-go/rlogin/internal/systemd"
)

// closeInherited closes the descriptors rlogind inherited, but for 0, 1 and 2 (with -inetd
// standard input is the connection) and the sockets systemd passed, as sshd does at start:
// otherwise every session's shell would inherit them too, and a daemon started from a root
// shell holding a root-only file open would hand that file to every user who logs in.
//
// It keeps whatever the Go runtime opened (the network poller, the cgroup files it watches):
// those descriptors are close-on-exec, and inheritedfd closes only the ones that are not, which
// is what every inherited descriptor is. So it need not run before the runtime starts, only
// before rlogind itself opens anything without close-on-exec (it never does).
func closeInherited() error {
	n := systemd.ListenFDs(os.Getenv, os.Getpid())
	if err := inheritedfd.Close(inheritedfd.Range(systemd.ListenFDsStart, n)...); err != nil {
		return fmt.Errorf("rlogind: cannot close the descriptors it inherited: %w", systemReason(err))
	}
	return nil
}
