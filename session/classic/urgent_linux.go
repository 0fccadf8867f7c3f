package classic

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Go's net package has no API for TCP urgent data, so this file uses the socket directly:
//
//   - The server sends an urgent byte with send(2) and MSG_OOB through the conn's RawConn, from
//     the goroutine that also writes the data, so the urgent mark falls after the data before it.
//   - The client reads data and urgent bytes in one goroutine (socketReader) that waits in
//     poll(2) for POLLIN and POLLPRI on a duplicate of the socket's descriptor, and then reads
//     with MSG_DONTWAIT. Go's netpoller cannot serve here: it waits for EPOLLIN only, and an
//     urgent byte alone does not make a socket readable in that sense, so a window request
//     (0x80) that arrives with no data after it would go unseen. SIGURG with F_SETOWN would
//     work, but it is per process (the Go runtime also uses SIGURG for preemption), and a
//     signal still needs a goroutine to act on it in order with the data. One poll(2) per
//     client holds one thread while it waits; rlogin has one connection.
//   - Data and urgent bytes are taken in order: before each read at the urgent mark
//     (SIOCATMARK), the urgent byte is read first, because a read that starts at the mark goes
//     past it and loses the urgent byte. A flush (0x02) discards the data before the mark.

// rawConnOf returns the RawConn of the TCP socket under c: c itself or a conn it wraps, found
// through NetConn methods. It returns nil if there is none.
func rawConnOf(c net.Conn) syscall.RawConn {
	for range 8 { // bounded: a wrapper that returns itself must not loop forever
		if tc, ok := c.(*net.TCPConn); ok {
			rc, err := tc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
	return nil
}

// notsentLowat bounds the data a classic server's socket holds that TCP has not sent yet
// (TCP_NOTSENT_LOWAT): writes wait beyond it. So an urgent byte queued after a flood is never far
// behind the data on the wire.
const notsentLowat = 16 << 10

// Waiting for the unsent data before an urgent byte: at most urgentWaitMax, looking every
// urgentWaitStep.
const (
	urgentWaitMax  = 500 * time.Millisecond
	urgentWaitStep = time.Millisecond
)

// tuneServerSocket sets the socket options of a classic server's socket (best effort).
func tuneServerSocket(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notsentLowat)
	})
}

// sendUrgent sends the byte c as TCP urgent data on rc's socket, waiting for room if needed.
//
// It first waits (at most urgentWaitMax) until TCP has sent all the data queued before it
// (SIOCOUTQNSD is 0), so that the urgent byte leaves in the segment that first carries its urgent
// pointer. Behind unsent data the pointer travels ahead of the byte, and netkit rlogin, told of
// urgent data that has not arrived, reads 8 KiB a second until it does: a flush would take
// seconds instead of milliseconds.
func sendUrgent(rc syscall.RawConn, c byte) error {
	deadline := time.Now().Add(urgentWaitMax)
	for {
		unsent := 0
		if err := rc.Control(func(fd uintptr) {
			unsent, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD)
		}); err != nil || unsent == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(urgentWaitStep)
	}
	b := []byte{c}
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendto(int(fd), b, unix.MSG_OOB|unix.MSG_NOSIGNAL, nil)
			if serr != unix.EINTR {
				return serr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("classic: sending urgent data: %w", err)
	}
	return nil
}

// errStopped is what a stopped socketReader's wait returns.
var errStopped = errors.New("classic: reader stopped")

// errAgain reports that no data is there to read right now.
var errAgain = errors.New("classic: no data yet")

// urgentState is what readUrgent found.
type urgentState int

const (
	urgentGot    urgentState = iota // an urgent byte was read
	urgentNone                      // there is none, or it was read already
	urgentNotYet                    // the urgent pointer arrived, the byte not yet
)

// socketReader reads a TCP socket's data and urgent bytes through a duplicate of its descriptor,
// waiting in poll(2); see the comment at the top of this file. One goroutine uses it; stop and
// wakeup may be called from any.
type socketReader struct {
	fd      int
	wake    [2]int // pipe: stop and wakeup write to wake[1]
	stopped atomic.Bool
}

func newSocketReader(rc syscall.RawConn) (*socketReader, error) {
	r := &socketReader{fd: -1}
	var derr error
	err := rc.Control(func(fd uintptr) {
		r.fd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("classic: duplicating the socket: %w", err)
	}
	if err := unix.Pipe2(r.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		_ = unix.Close(r.fd)
		return nil, fmt.Errorf("classic: pipe: %w", err)
	}
	return r, nil
}

// wait waits until the socket has an urgent byte (urgent), or data if wantData, or has ended or
// failed if wantEnd (both reported as data: a read tells which), or until wakeup or stop is
// called (neither; errStopped after stop).
func (r *socketReader) wait(wantData, wantEnd bool) (data, urgent bool, err error) {
	fds := []unix.PollFd{
		{Fd: int32(r.fd), Events: unix.POLLPRI},
		{Fd: int32(r.wake[0]), Events: unix.POLLIN},
	}
	if wantData {
		fds[0].Events |= unix.POLLIN
	}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("classic: poll: %w", err)
		}
		if fds[1].Revents != 0 {
			var b [64]byte
			_, _ = unix.Read(r.wake[0], b[:]) // drain; the pipe is non-blocking
			if r.stopped.Load() {
				return false, false, errStopped
			}
			return false, false, nil
		}
		ev := fds[0].Revents
		urgent = ev&unix.POLLPRI != 0
		data = wantData && ev&unix.POLLIN != 0 || wantEnd && ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
		if urgent || data {
			return data, urgent, nil
		}
		if ev != 0 {
			// Hung up or failed while the caller cannot read (no room): wait for the wake-up
			// only, instead of spinning on the error.
			fds[0].Fd = -1
		}
	}
}

// read reads data; errAgain when there is none right now; 0, nil at the end of the stream.
func (r *socketReader) read(b []byte) (int, error) {
	for {
		n, _, err := unix.Recvfrom(r.fd, b, unix.MSG_DONTWAIT)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errAgain
		}
		return 0, fmt.Errorf("classic: read: %w", err)
	}
}

// readUrgent reads the urgent byte, if it is there.
func (r *socketReader) readUrgent() (byte, urgentState, error) {
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(r.fd, b[:], unix.MSG_OOB|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EINVAL:
			return 0, urgentNone, nil
		case err == unix.EAGAIN:
			return 0, urgentNotYet, nil
		case err != nil:
			return 0, urgentNone, fmt.Errorf("classic: reading urgent data: %w", err)
		case n == 0:
			return 0, urgentNone, nil // the stream ended before the urgent byte
		}
		return b[0], urgentGot, nil
	}
}

// atMark reports whether the next byte to read is the urgent mark (SIOCATMARK).
func (r *socketReader) atMark() (bool, error) {
	v, err := unix.IoctlGetInt(r.fd, unix.SIOCATMARK)
	if err != nil {
		return false, fmt.Errorf("classic: SIOCATMARK: %w", err)
	}
	return v != 0, nil
}

// wakeup makes a wait in progress (or the next one) return.
func (r *socketReader) wakeup() {
	_, _ = unix.Write(r.wake[1], []byte{0}) // a full pipe is a pending wake-up already
}

// stop makes a wait in progress, and every later one, return errStopped.
func (r *socketReader) stop() {
	r.stopped.Store(true)
	r.wakeup()
}

// close releases the duplicate descriptor and the pipe; call it once the reading goroutine is done.
func (r *socketReader) close() {
	_ = unix.Close(r.fd)
	_ = unix.Close(r.wake[0])
	_ = unix.Close(r.wake[1])
}
