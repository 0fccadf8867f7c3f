package rlogind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/systemd"
	"github.com/rlogin-go/rlogin/transport"
	"golang.org/x/sys/unix"
)

// sockets are the listeners rlogind serves.
type sockets struct {
	ls        []net.Listener
	names     []string // systemd's names, when activated
	activated bool     // passed by systemd
	addr      string   // -addr, when not activated
}

// listen returns the sockets systemd passed, or else a listener on addr. It is the first
// thing rlogind does after reading its options: whatever cannot listen must fail before any
// file is made.
func listen(ctx context.Context, addr string) (*sockets, error) {
	ls, names, err := systemd.Listeners(os.Getenv, os.Getpid(), systemd.ListenFDsStart)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(v) // for no child to see
	}
	if err != nil {
		return nil, fmt.Errorf("rlogind: %w", err)
	}
	if len(ls) > 0 {
		return &sockets{ls: ls, names: names, activated: true}, nil
	}
	l, err := transport.Listen(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("rlogind: cannot listen on %s: %w", addr, systemReason(err))
	}
	return &sockets{ls: []net.Listener{l}, addr: addr}, nil
}

// logActivation logs the sockets systemd passed, if it did.
func (s *sockets) logActivation(log *slog.Logger) {
	if !s.activated {
		return
	}
	addrs := make([]string, len(s.ls))
	for i, l := range s.ls {
		addrs[i] = l.Addr().String()
	}
	log.Info("socket activation: serving the sockets systemd passed", "addrs", strings.Join(addrs, ","), "names", strings.Join(s.names, ","))
}

// listener is the one listener to serve: the only socket, or all of them merged.
func (s *sockets) listener() net.Listener {
	if len(s.ls) == 1 {
		return s.ls[0]
	}
	m := newMultiListener(s.ls)
	s.ls = []net.Listener{m}
	return m
}

// close closes the sockets (Serve closes them too: a second Close does nothing harmful).
func (s *sockets) close() {
	for _, l := range s.ls {
		_ = l.Close()
	}
}

// systemReason returns the system's reason for err, such as the errno "address already in
// use" under transport's and net's layers of context, so that a message can give the
// user's words around it; err itself if it has none.
func systemReason(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
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
