package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS.
const maxListenFDs = 64

// systemdListeners returns the listening sockets passed by systemd's socket activation
// (sd_listen_fds(3)): LISTEN_PID must be pid, LISTEN_FDS the number of descriptors from
// firstFD on, LISTEN_FDNAMES optionally their colon-separated names. With no LISTEN_PID, or
// one for another process (the variables were inherited), it returns none. It takes the
// descriptors over (they are closed when the listeners are) and marks them close-on-exec.
func systemdListeners(getenv func(string) string, pid, firstFD int) ([]net.Listener, []string, error) {
	pidStr, nStr, namesStr := getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES")
	if pidStr == "" {
		return nil, nil, nil
	}
	if p, err := strconv.Atoi(pidStr); err != nil || p != pid {
		return nil, nil, nil
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, nil, fmt.Errorf("daemon: socket activation: bad LISTEN_FDS %q", nStr)
	}
	var names []string
	if namesStr != "" {
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
			return fail(fmt.Errorf("daemon: socket activation: descriptor %d (%s) is not a listening socket "+
				"(with Accept=yes, run rlogind -inetd with StandardInput=socket instead)", fd, name))
		}
		f := os.NewFile(uintptr(fd), name)
		l, err := net.FileListener(f) // a duplicate: f is closed below
		_ = f.Close()
		if err != nil {
			return fail(fmt.Errorf("daemon: socket activation: descriptor %d (%s): %w", fd, name, err))
		}
		ls = append(ls, l)
		used = append(used, name)
	}
	return ls, used, nil
}

// multiListener accepts from several listeners (systemd may pass more than one socket, such
// as IPv4 and IPv6 ones). One goroutine per listener feeds Accept; Close stops and waits for
// them.
type multiListener struct {
	ls    []net.Listener
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newMultiListener(ls []net.Listener) *multiListener {
	m := &multiListener{ls: ls, conns: make(chan net.Conn), errs: make(chan error, len(ls)), done: make(chan struct{})}
	for _, l := range ls {
		m.wg.Go(func() { m.acceptLoop(l) })
	}
	return m
}

// acceptLoop hands l's conns to Accept until l fails or m is closed.
func (m *multiListener) acceptLoop(l net.Listener) {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-m.done:
					return
				}
			}
			m.errs <- err
			return
		}
		delay = 0
		select {
		case m.conns <- c:
		case <-m.done:
			_ = c.Close()
			return
		}
	}
}

// Accept returns the next conn from any of the listeners, or the first error of one of them.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener and waits for the accept goroutines.
func (m *multiListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		for _, l := range m.ls {
			if cerr := l.Close(); err == nil {
				err = cerr
			}
		}
		m.wg.Wait()
	})
	return err
}

// Addr is the first listener's address.
func (m *multiListener) Addr() net.Addr { return m.ls[0].Addr() }

// notifier sends service state to systemd (sd_notify(3)) when NOTIFY_SOCKET is set: READY=1
// once serving, RELOADING=1 during a reload, STOPPING=1 on the way out (Type=notify units).
type notifier struct {
	addr string // "" when not under systemd
}

// newNotifier reads NOTIFY_SOCKET and unsets it, so that no child sees it.
func newNotifier() *notifier {
	n := &notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	_ = os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// send sends state; errors are ignored, as sd_notify's usually are: the service works anyway.
func (n *notifier) send(state string) {
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

// reloadingMessage is the notification of a reload, with the monotonic time systemd asks for.
func reloadingMessage() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}
