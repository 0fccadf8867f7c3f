// Package systemd is what a daemon started by systemd needs of it: the listening sockets of
// socket activation (sd_listen_fds(3)) and service state notifications (sd_notify(3)), without
// cgo or libsystemd.
//
// Typical usage:
//
//	ls, names, err := systemd.Listeners(os.Getenv, os.Getpid(), systemd.ListenFDsStart)
//	if err != nil {
//		return err
//	}
//	if len(ls) == 0 {
//		// not socket-activated: listen on an address of your own
//	}
//	n := systemd.NewNotifier() // reads and unsets NOTIFY_SOCKET
//	n.Send(systemd.Ready)
//	... serve ls ...
//	n.Send(systemd.Stopping)
//
// Outside systemd both are no-ops: Listeners returns no listeners, the Notifier sends nothing.
package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ListenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const ListenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS.
const maxListenFDs = 64

// Listeners returns the listening sockets passed by systemd's socket activation
// (sd_listen_fds(3)), and their names: LISTEN_PID must be pid, LISTEN_FDS the number of
// descriptors from firstFD on, LISTEN_FDNAMES optionally their colon-separated names (a
// descriptor without one is named LISTEN_FD_n). With no LISTEN_PID, or one for another process
// (the variables were inherited), it returns none. It takes the descriptors over (they are
// closed when the listeners are) and marks them close-on-exec. It does not unset the
// variables: a caller that starts other programs should, so that no child sees them.
func Listeners(getenv func(string) string, pid, firstFD int) ([]net.Listener, []string, error) {
	n, err := listenFDs(getenv, pid)
	if err != nil || n == 0 {
		return nil, nil, err
	}
	var names []string
	if namesStr := getenv("LISTEN_FDNAMES"); namesStr != "" {
		names = strings.Split(namesStr, ":")
	}
	var ls []net.Listener
	var used []string
	fail := func(err error) ([]net.Listener, []string, error) {
		for _, l := range ls {
			_ = l.Close()
		}
		return nil, nil, err
	}
	for i := range n {
		fd := firstFD + i
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		unix.CloseOnExec(fd)
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
			return fail(fmt.Errorf("systemd: socket activation: descriptor %d (%s) is not a listening socket "+
				"(with Accept=yes, run rlogind -inetd with StandardInput=socket instead)", fd, name))
		}
		f := os.NewFile(uintptr(fd), name)
		l, err := net.FileListener(f) // a duplicate: f is closed below
		_ = f.Close()
		if err != nil {
			return fail(fmt.Errorf("systemd: socket activation: descriptor %d (%s): %w", fd, name, err))
		}
		ls = append(ls, l)
		used = append(used, name)
	}
	return ls, used, nil
}

// ListenFDs returns how many descriptors systemd's socket activation passed the process pid,
// from ListenFDsStart on: LISTEN_FDS when LISTEN_PID is pid, else 0. It only reads the
// variables, for a daemon that must know which descriptors to keep before it takes them over
// with Listeners; a bad LISTEN_FDS counts as 0 here, and Listeners reports it.
func ListenFDs(getenv func(string) string, pid int) int {
	n, _ := listenFDs(getenv, pid)
	return n
}

// listenFDs is LISTEN_FDS when LISTEN_PID is pid, else 0; an error if it is not a number
// from 0 to maxListenFDs.
func listenFDs(getenv func(string) string, pid int) (int, error) {
	pidStr, nStr := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if p, err := strconv.Atoi(pidStr); err != nil || p != pid {
		return 0, nil // none, or inherited from a process that was activated
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n < 0 || n > maxListenFDs {
		return 0, fmt.Errorf("systemd: socket activation: bad LISTEN_FDS %q", nStr)
	}
	return n, nil
}

// States a service sends (sd_notify(3)); Reloading has its own function, ReloadingMessage.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// A Notifier sends service state to systemd (sd_notify(3)) when NOTIFY_SOCKET is set: Ready
// once serving, ReloadingMessage during a reload, Stopping on the way out (Type=notify and
// Type=notify-reload units). A nil or zero Notifier sends nothing.
type Notifier struct {
	addr string // "" when not under systemd
}

// NewNotifier reads NOTIFY_SOCKET and unsets it, so that no child sees it.
func NewNotifier() *Notifier {
	n := &Notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	_ = os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// Send sends state, such as Ready or Ready+"\nSTATUS=text". Errors are ignored, as
// sd_notify's usually are: the service works anyway.
func (n *Notifier) Send(state string) {
	if n == nil || n.addr == "" {
		return
	}
	addr := n.addr
	if addr[0] != '@' && addr[0] != '/' {
		return // vsock and others: not supported
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// ReloadingMessage is the notification of a reload, with the monotonic time systemd asks for.
func ReloadingMessage() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}
