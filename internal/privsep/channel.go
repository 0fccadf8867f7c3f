package privsep

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Side says which end of the socketpair a Channel is: what it may send and receive.
type Side int

const (
	// MonitorSide receives requests and sends replies.
	MonitorSide Side = iota
	// NetSide sends requests and receives replies.
	NetSide
)

// A Channel carries messages over one end of a SOCK_SEQPACKET socketpair between a monitor and
// its net child: one message per packet, descriptors with SCM_RIGHTS. Multiple goroutines may
// call Send simultaneously; Receive calls are serialized, and each returns one whole message.
type Channel struct {
	conn *net.UnixConn
	side Side

	rmu sync.Mutex // guards buf and oob, one Receive at a time
	buf []byte
	oob []byte
}

// Pair makes a SOCK_SEQPACKET socketpair, both ends close-on-exec: one end for the monitor's
// Channel, the other for the net child (exec.Cmd.ExtraFiles) or, in tests, a second Channel.
func Pair() (monitor, net *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("privsep: socketpair: %w", os.NewSyscallError("socketpair", err))
	}
	return os.NewFile(uintptr(fds[0]), "privsep-monitor"), os.NewFile(uintptr(fds[1]), "privsep-net"), nil
}

// NewChannel returns a Channel over conn, one end of a SOCK_SEQPACKET Unix socket (a
// *net.UnixConn of network "unixpacket"). The Channel owns conn; on failure NewChannel closes
// it. It never creates a socket itself: Pair does.
func NewChannel(conn net.Conn, side Side) (*Channel, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok || uc.LocalAddr().Network() != "unixpacket" {
		_ = conn.Close()
		return nil, fmt.Errorf("privsep: channel needs a SOCK_SEQPACKET Unix socket, not %s", conn.LocalAddr().Network())
	}
	if side != MonitorSide && side != NetSide {
		_ = conn.Close()
		return nil, fmt.Errorf("privsep: unknown side %d", side)
	}
	return &Channel{
		conn: uc,
		side: side,
		buf:  make([]byte, MaxMessageLen+1), // one byte more, to see a message that is too long
		// Room for more descriptors than any message carries: extra ones arrive and are
		// refused, rather than the kernel dropping them and the message looking whole.
		oob: make([]byte, unix.CmsgSpace(4*(maxFiles+7))),
	}, nil
}

// NewFileChannel returns a Channel over f, a SOCK_SEQPACKET socket such as the end of Pair a net
// child inherited. It takes f: f is closed when NewFileChannel returns, whether it succeeds
// or not (the Channel holds a duplicate).
func NewFileChannel(f *os.File, side Side) (*Channel, error) {
	conn, err := net.FileConn(f)
	_ = f.Close() // the conn holds its own descriptor
	if err != nil {
		return nil, fmt.Errorf("privsep: channel: %w", err)
	}
	return NewChannel(conn, side)
}

// Send sends m with files, which must be the descriptors m carries (ACCEPT: the pty master;
// PIPES: the command's stdin, stdout and stderr; RELAY and ATTACH: a Unix stream socket; the
// other messages: none). It refuses a message this side may not send and one whose fields
// break their bounds. The files stay the caller's: the peer gets duplicates.
func (c *Channel) Send(m Message, files ...*os.File) error {
	if m.Type().request() != (c.side == NetSide) {
		return fmt.Errorf("privsep: send: %v may not be sent from this side", m.Type())
	}
	if len(files) != m.files() {
		return fmt.Errorf("privsep: send: %v carries %d descriptors, not %d", m.Type(), m.files(), len(files))
	}
	b, err := encode(m)
	if err != nil {
		return fmt.Errorf("privsep: send: %w", err)
	}
	var oob []byte
	if len(files) > 0 {
		fds, err := rawFds(files)
		if err != nil {
			return fmt.Errorf("privsep: send %v: %w", m.Type(), err)
		}
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.conn.WriteMsgUnix(b, oob, nil)
	runtime.KeepAlive(files) // their descriptors are in oob
	if err != nil {
		return fmt.Errorf("privsep: send %v: %w", m.Type(), err)
	}
	if n != len(b) {
		return fmt.Errorf("privsep: send %v: wrote %d of %d bytes", m.Type(), n, len(b))
	}
	return nil
}

// rawFds returns the descriptors of files without os.File.Fd's side effect of putting them in
// blocking mode (a pty master the caller reads through the poller must stay as it is).
func rawFds(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for _, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return nil, err
		}
		if err := rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return nil, err
		}
	}
	return fds, nil
}

// Receive returns the next message and the descriptors it carries (close-on-exec). It refuses,
// closing any descriptors that came with it, a message this side may not receive, one that
// breaks the message set's bounds (docs/privsep-messages.md), one longer than MaxMessageLen, and
// one with more or fewer descriptors than its type carries. At the peer's close it returns
// io.EOF. An error other than a deadline's ends the use of the Channel: the monitor treats any
// refusal as the end of the connection.
func (c *Channel) Receive() (Message, []*os.File, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, oobn, flags, _, err := c.conn.ReadMsgUnix(c.buf, c.oob)
	files, ferr := parseRights(c.oob[:oobn])
	refuse := func(err error) (Message, []*os.File, error) {
		closeFiles(files)
		return nil, nil, err
	}
	switch {
	case err != nil:
		return refuse(fmt.Errorf("privsep: receive: %w", err))
	case ferr != nil:
		return refuse(fmt.Errorf("privsep: receive: %w", ferr))
	case n == 0 && oobn == 0:
		return refuse(io.EOF) // a SEQPACKET socket reads 0 bytes after the peer's close; no message is empty
	case flags&unix.MSG_TRUNC != 0 || n > MaxMessageLen:
		return refuse(fmt.Errorf("privsep: receive: message exceeds the limit of %d bytes", MaxMessageLen))
	case flags&unix.MSG_CTRUNC != 0:
		return refuse(errors.New("privsep: receive: too many descriptors"))
	}
	decode := decodeReply
	if c.side == MonitorSide {
		decode = decodeRequest
	}
	m, err := decode(c.buf[:n])
	if err != nil {
		return refuse(fmt.Errorf("privsep: receive: %w", err))
	}
	if len(files) != m.files() {
		return refuse(fmt.Errorf("privsep: receive: %v came with %d descriptors, want %d", m.Type(), len(files), m.files()))
	}
	if err := checkFiles(m, files); err != nil {
		return refuse(fmt.Errorf("privsep: receive: %v: %w", m.Type(), err))
	}
	return m, files, nil
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob. Any other control
// message is an error; the descriptors found are returned with it, for the caller to close.
func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var files []*os.File
	var bad error
	for _, cm := range msgs {
		if cm.Header.Level != unix.SOL_SOCKET || cm.Header.Type != unix.SCM_RIGHTS {
			bad = fmt.Errorf("unexpected control message %d/%d", cm.Header.Level, cm.Header.Type)
			continue
		}
		fds, err := unix.ParseUnixRights(&cm)
		if err != nil {
			bad = fmt.Errorf("control message: %w", err)
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "privsep-received"))
		}
	}
	return files, bad
}

// checkFiles checks what received descriptors are: ACCEPT's is a terminal's master, a
// character device; PIPES's are pipes, the first open for writing (the command's stdin), the
// others for reading (its stdout and stderr); RELAY's and ATTACH's are Unix stream sockets.
func checkFiles(m Message, files []*os.File) error {
	switch m.(type) {
	case *Accept:
		fi, err := files[0].Stat()
		if err != nil {
			return fmt.Errorf("pty master: %w", err)
		}
		if fi.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("pty master is not a character device (%v)", fi.Mode())
		}
	case *Relay, *Attach:
		if err := checkStreamSocket(files[0]); err != nil {
			return fmt.Errorf("socket: %w", err)
		}
	case *Pipes:
		for i, f := range files {
			want := unix.O_RDONLY
			if i == 0 {
				want = unix.O_WRONLY
			}
			if err := checkPipe(f, want); err != nil {
				return fmt.Errorf("pipe %d: %w", i, err)
			}
		}
	}
	return nil
}

// checkPipe checks that f is a pipe open with access mode want (O_RDONLY or O_WRONLY).
func checkPipe(f *os.File, want int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("not a pipe (%v)", fi.Mode())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var flags int
	cerr := rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	if flags&unix.O_ACCMODE != want {
		return fmt.Errorf("open with access mode %d, want %d", flags&unix.O_ACCMODE, want)
	}
	return nil
}

// checkStreamSocket checks that f is a Unix stream socket (one end of a socketpair).
func checkStreamSocket(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var domain, typ int
	var derr, terr error
	cerr := rc.Control(func(fd uintptr) {
		domain, derr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, terr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	})
	switch {
	case cerr != nil:
		return cerr
	case derr != nil:
		return fmt.Errorf("not a socket: %w", derr)
	case terr != nil:
		return fmt.Errorf("not a socket: %w", terr)
	case domain != unix.AF_UNIX || typ != unix.SOCK_STREAM:
		return fmt.Errorf("a socket of domain %d and type %d, not a Unix stream socket", domain, typ)
	}
	return nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close() // refused: the sender's copy is the sender's business
	}
}

// SetDeadline sets the deadline of Send and Receive, as net.Conn's.
func (c *Channel) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the deadline of Receive.
func (c *Channel) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Send.
func (c *Channel) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close closes the Channel; a Receive or Send blocked on it returns an error that
// errors.Is(err, net.ErrClosed), and the peer's Receive returns io.EOF.
func (c *Channel) Close() error { return c.conn.Close() }
