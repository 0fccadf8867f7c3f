package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"golang.org/x/sys/unix"
)

// The control socket's events of resume and reattach. The events of separate.go are one byte;
// these are the event's byte and a JSON object (one packet: the socket is SOCK_SEQPACKET),
// with at most one descriptor. Both ends are root and this same program, so JSON's looseness
// costs nothing; what the fields hold came from the monitor's own checks (the user it
// authenticated, the kernel's peer address), from privsep's checked messages, or from the
// listener's registry.
const (
	eventResumable = 'R' // monitor: its session may be resumed (controlSession)
	eventDetached  = 'D' // monitor: its session lost its connection (no fields)
	eventAttached  = 'T' // monitor: its session took a new connection (controlPeer)
	eventList      = 'L' // monitor: its user's sessions? (controlUser) Answered:
	answerList     = 'l' //   listener: controlList
	eventResume    = 'U' // monitor: resume a session, with a socket (controlResume); answered answerYes or answerNo
	commandAttach  = 'A' // listener to a session's monitor: a new connection for it, with a socket (controlAttach)
)

// maxControlLen bounds a control packet: a list of privsep.MaxListed sessions fits.
const maxControlLen = 64 << 10

// controlWait bounds how long a monitor waits for the listener's answer.
const controlWait = 10 * time.Second

// controlSession is what a monitor registers of its resumable session.
type controlSession struct {
	ID      [privsep.SessionIDLen]byte
	User    string
	UID     int
	Forced  string // the forced command of the key that started it, if any (resumable.permits)
	PID     int
	Started time.Time
	Peer    string
	What    string
}

// controlPeer is the address of a session's new client.
type controlPeer struct{ Peer string }

// controlUser is the user a monitor authenticated, with its key's options.
type controlUser struct {
	User   string
	UID    int
	Forced string // the key's forced command, if any
	NoPTY  bool   // the key's no-pty
}

// controlList is the listener's answer to eventList.
type controlList struct{ Sessions []privsep.SessionEntry }

// controlResume asks to resume session ID for the user the monitor authenticated; Peer is its
// connection's address.
type controlResume struct {
	controlUser
	ID       [privsep.SessionIDLen]byte
	Reattach bool
	Peer     string
}

// controlAttach is what the listener passes to the session's monitor with the socket.
type controlAttach struct {
	Reattach bool
	Peer     string
}

// sendControl writes the event ev with v (nil: no fields) and fd (nil: none) on c.
func sendControl(c *net.UnixConn, ev byte, v any, fd *os.File) error {
	b := []byte{ev}
	if v != nil {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("daemon: control event %c: %w", ev, err)
		}
		b = append(b, j...)
	}
	if len(b) > maxControlLen {
		return fmt.Errorf("daemon: control event %c of %d bytes", ev, len(b))
	}
	var oob []byte
	if fd != nil {
		oob = unix.UnixRights(int(fd.Fd()))
	}
	_, _, err := c.WriteMsgUnix(b, oob, nil)
	runtime.KeepAlive(fd) // its descriptor is in oob
	if err != nil {
		return fmt.Errorf("daemon: control event %c: %w", ev, err)
	}
	return nil
}

// A controlReader reads c's packets, one at a time.
type controlReader struct {
	c   *net.UnixConn
	buf []byte
	oob []byte
}

func newControlReader(c *net.UnixConn) *controlReader {
	return &controlReader{c: c, buf: make([]byte, maxControlLen+1), oob: make([]byte, unix.CmsgSpace(4*4))}
}

// read returns the next event, its fields (JSON, or empty) and the descriptor that came with
// it, if any (close-on-exec); io.EOF when the peer closed. A packet too long, or
// with more than one descriptor, is an error (its descriptors closed).
func (r *controlReader) read() (ev byte, fields []byte, fd *os.File, err error) {
	n, oobn, flags, _, err := r.c.ReadMsgUnix(r.buf, r.oob)
	var fds []int
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(r.oob[:oobn])
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
		if perr != nil && err == nil {
			err = perr
		}
	}
	if err == nil {
		switch {
		case n == 0:
			err = io.EOF // a SEQPACKET socket reads 0 bytes after the peer's close
		case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || n > maxControlLen:
			err = errors.New("daemon: control packet too long")
		case len(fds) > 1:
			err = errors.New("daemon: control packet with more than one descriptor")
		}
	}
	if err != nil {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return 0, nil, nil, err
	}
	if len(fds) == 1 {
		fd = os.NewFile(uintptr(fds[0]), "control-socket")
	}
	return r.buf[0], r.buf[1:n], fd, nil
}
