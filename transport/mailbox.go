package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for the zero fields of Mux.
const (
	DefaultNameTimeout = 10 * time.Second
	DefaultMaxPending  = 256
)

// MaxNameLen is the longest mailbox name, in bytes.
const MaxNameLen = 64

// First bytes of other protocols that a Mux can tell from a mailbox name (see
// Mux.AnnounceFirstByte).
const (
	FirstByteClassic byte = 0x00 // a classic rlogin client (RFC 1282) starts with NUL
	FirstByteTLS     byte = 0x16 // a TLS client starts with a handshake record (content type 22)
)

const (
	// mailboxQueueLen bounds the conns waiting in one mailbox for its
	// owner's Accept; further ones are refused as busy.
	mailboxQueueLen = 16
	// nameBufSize is what the server reads at once during the name
	// exchange; bytes past the CRLF are handed to the mailbox's owner.
	nameBufSize = 512
	// maxReplyLen bounds the server's reply line read by a client.
	maxReplyLen = 512
	// maxHelpLen bounds the HELP listing read by ListMailboxes.
	maxHelpLen = 64 << 10
)

// Reasons sent in "-reason" replies.
const (
	reasonUnknown = "unknown mailbox"
	reasonBusy    = "mailbox busy"
	reasonBadName = "invalid mailbox name"
)

// ErrInvalidName is the error, matched with errors.Is, of a mailbox name
// that ValidMailboxName refuses.
var ErrInvalidName = errors.New("invalid mailbox name")

// errNameTooLong is the server's error for a requested name over MaxNameLen.
var errNameTooLong = fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameLen)

// ValidMailboxName reports whether name can name a mailbox, in Announce and
// in a request: 1 to MaxNameLen bytes of printable ASCII without spaces, not
// starting with "+" or "-" (in a HELP listing such a name would read as a
// server's reply). A Mux reads any printable name a client requests, and
// answers one it cannot have, such as "-x", as an unknown mailbox.
func ValidMailboxName(name string) bool {
	if name == "" || len(name) > MaxNameLen || !isNameStart(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return false
		}
	}
	return true
}

func isNameByte(b byte) bool { return b > ' ' && b < 0x7f }

func isNameStart(b byte) bool { return isNameByte(b) && b != '+' && b != '-' }

// A Mux serves named mailboxes on one listener with the TCPMUX convention
// of RFC 1078: a client sends a mailbox name and CRLF; the Mux answers
// "+" CRLF and hands the conn to that mailbox's listener, or "-reason" CRLF
// and closes it. Names are case-insensitive. The name HELP lists the
// announced mailboxes, one per CRLF-terminated line, and closes.
//
// A Mux can also hand over, without a name exchange, conns whose first
// byte cannot start a name: see AnnounceFirstByte. So one port serves
// mailboxes, classic rlogin clients and direct TLS clients.
//
// Set the fields before calling Serve and do not change them afterwards.
type Mux struct {
	// NameTimeout bounds the whole name exchange of one conn, so a silent
	// peer cannot hold a slot; 0 means DefaultNameTimeout.
	NameTimeout time.Duration
	// MaxPending caps the conns in the name exchange at once; a conn
	// accepted beyond it is closed at once. 0 means DefaultMaxPending.
	MaxPending int
	// Logger, if set, receives refused and failed exchanges.
	Logger *slog.Logger
	// KeepAlive is set on each TCP conn accepted, so that a peer that
	// vanishes is noticed (see KeepAlive); the zero value within 45
	// seconds.
	KeepAlive KeepAlive

	l net.Listener

	mu      sync.Mutex
	closed  bool
	closeCh chan struct{}         // closed by Close
	boxes   map[string]*mailbox   // by lower-case name
	pending map[net.Conn]struct{} // conns in the name exchange
	wg      sync.WaitGroup        // exchange goroutines
	err     error                 // result of l.Close
}

// NewMux returns a Mux serving mailboxes on l. The Mux owns l: Close
// closes it.
func NewMux(l net.Listener) *Mux {
	return &Mux{
		l:       l,
		closeCh: make(chan struct{}),
		boxes:   make(map[string]*mailbox),
		pending: make(map[net.Conn]struct{}),
	}
}

func (m *Mux) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Announce opens the mailbox name (see ValidMailboxName; "HELP" is
// reserved) and returns its listener. Conns accepted from it are *Conn and
// have passed the name exchange; bytes the client sent after its CRLF come
// out of them first. A name that is not valid gives an error matching
// ErrInvalidName. Close of the listener withdraws the name and closes conns that
// were not accepted yet. Addr of the listener is the Mux's address.
func (m *Mux) Announce(name string) (net.Listener, error) {
	if !ValidMailboxName(name) || strings.EqualFold(name, "help") {
		return nil, fmt.Errorf("transport: announce %q: %w", name, ErrInvalidName)
	}
	key := strings.ToLower(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("transport: announce %q: %w", name, net.ErrClosed)
	}
	if _, ok := m.boxes[key]; ok {
		return nil, fmt.Errorf("transport: announce %q: mailbox already announced", name)
	}
	b := &mailbox{
		mux:   m,
		name:  name,
		key:   key,
		queue: make(chan net.Conn, mailboxQueueLen),
		done:  make(chan struct{}),
	}
	m.boxes[key] = b
	return b, nil
}

// AnnounceFirstByte opens a listener for the conns whose first byte is b,
// which must be a byte no mailbox name starts with (not printable ASCII):
// for example FirstByteClassic (NUL, a classic rlogin client) or
// FirstByteTLS (0x16, a TLS client that asks for no mailbox). The Mux hands
// such a conn over as soon as its first bytes arrive, with no reply, as a
// *Conn whose first Reads return the bytes the Mux read, b first. Until then the
// conn is in the name exchange: it counts against MaxPending and must send
// its first byte within NameTimeout. A conn that arrives while the
// listener's queue is full is closed. Close of the listener withdraws it;
// HELP does not list it. Addr of the listener is the Mux's address.
func (m *Mux) AnnounceFirstByte(b byte) (net.Listener, error) {
	if isNameByte(b) {
		return nil, fmt.Errorf("transport: announce first byte %#02x: a mailbox name can start with it", b)
	}
	key := string([]byte{b}) // never a name's key: names are printable
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("transport: announce first byte %#02x: %w", b, net.ErrClosed)
	}
	if _, ok := m.boxes[key]; ok {
		return nil, fmt.Errorf("transport: announce first byte %#02x: already announced", b)
	}
	box := &mailbox{
		mux:   m,
		name:  fmt.Sprintf("first byte %#02x", b),
		key:   key,
		queue: make(chan net.Conn, mailboxQueueLen),
		done:  make(chan struct{}),
	}
	m.boxes[key] = box
	return box, nil
}

// firstByteBox returns the listener announced for first byte b, if any.
func (m *Mux) firstByteBox(b byte) *mailbox {
	if isNameByte(b) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boxes[string([]byte{b})]
}

// Serve accepts conns on the Mux's listener and runs the name exchange of
// each in its own goroutine, until Close. It keeps serving while peers
// stall: each exchange has a deadline (NameTimeout) and at most MaxPending
// run at once. After Close it returns an error matching net.ErrClosed.
func (m *Mux) Serve() error {
	var delay time.Duration // backoff after a temporary Accept error
	for {
		c, err := m.l.Accept()
		if err != nil {
			select {
			case <-m.closeCh:
				return fmt.Errorf("transport: mux: %w", net.ErrClosed)
			default:
			}
			if !temporaryAcceptError(err) {
				return fmt.Errorf("transport: mux: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.logger().Warn("transport: accept", "err", err, "retry", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-m.closeCh:
				t.Stop()
			}
			continue
		}
		delay = 0
		m.start(c)
	}
}

// temporaryAcceptError reports whether Accept may succeed later: the
// process or system ran out of descriptors or memory.
func temporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// start runs the name exchange of c in a goroutine, unless the Mux is
// closed or MaxPending exchanges run already: then it closes c.
func (m *Mux) start(c net.Conn) {
	maxPending := m.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	m.mu.Lock()
	if m.closed || len(m.pending) >= maxPending {
		closed := m.closed
		m.mu.Unlock()
		if !closed {
			m.logger().Debug("transport: too many pending name exchanges", "peer", c.RemoteAddr().String())
		}
		_ = c.Close()
		return
	}
	m.pending[c] = struct{}{}
	m.wg.Add(1) // under mu, so never concurrent with Close's Wait at zero
	m.mu.Unlock()
	if err := m.KeepAlive.Set(c); err != nil { // the conn works without: logged, and served
		m.logger().Warn("transport: setting keepalive", "peer", c.RemoteAddr().String(), "err", err)
	}
	go m.exchange(c)
}

// exchange reads the mailbox name from c and answers it. Afterwards c is
// either closed or handed to a mailbox, and the Mux never touches it again.
func (m *Mux) exchange(c net.Conn) {
	defer m.wg.Done()
	handed := false
	defer func() {
		m.mu.Lock()
		delete(m.pending, c)
		m.mu.Unlock()
		if !handed {
			_ = c.Close()
		}
	}()
	timeout := m.NameTimeout
	if timeout <= 0 {
		timeout = DefaultNameTimeout
	}
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return
	}
	log := m.logger().With("peer", c.RemoteAddr().String())
	first := make([]byte, nameBufSize)
	n, err := c.Read(first)
	if n > 0 {
		if b := m.firstByteBox(first[0]); b != nil {
			handed = m.handOver(log, c, b, first[:n])
			return
		}
	}
	if n == 0 && err != nil {
		log.Debug("transport: mailbox name exchange failed", "err", err)
		return
	}
	name, rest, err := readName(io.MultiReader(bytes.NewReader(first[:n]), c))
	if err != nil {
		log.Debug("transport: mailbox name exchange failed", "err", err)
		if errors.Is(err, ErrInvalidName) {
			_, _ = io.WriteString(c, "-"+reasonBadName+"\r\n")
		}
		return
	}
	if strings.EqualFold(name, "help") {
		_, _ = c.Write(m.helpText())
		return
	}
	m.mu.Lock()
	b := m.boxes[strings.ToLower(name)]
	m.mu.Unlock()
	if b == nil {
		log.Debug("transport: unknown mailbox", "name", name)
		_, _ = io.WriteString(c, "-"+reasonUnknown+"\r\n")
		return
	}
	if reason := b.reserve(); reason != "" {
		log.Debug("transport: mailbox refused", "name", name, "reason", reason)
		_, _ = io.WriteString(c, "-"+reason+"\r\n")
		return
	}
	if _, err := io.WriteString(c, "+\r\n"); err != nil {
		b.release()
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		b.release()
		return
	}
	m.mu.Lock()
	delete(m.pending, c) // from now on Mux.Close reaches c through b
	m.mu.Unlock()
	handed = b.deliver(newConn(c, rest))
}

// handOver gives c, whose first bytes (read already) are first, to the
// first-byte listener b without a reply, and reports whether it did.
func (m *Mux) handOver(log *slog.Logger, c net.Conn, b *mailbox, first []byte) bool {
	if reason := b.reserve(); reason != "" {
		log.Debug("transport: first-byte listener refused a conn", "listener", b.name, "reason", reason)
		return false
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		b.release()
		return false
	}
	m.mu.Lock()
	delete(m.pending, c) // from now on Mux.Close reaches c through b
	m.mu.Unlock()
	return b.deliver(newConn(c, bytes.Clone(first)))
}

// helpText lists the announced names, one per CRLF-terminated line.
func (m *Mux) helpText() []byte {
	m.mu.Lock()
	names := make([]string, 0, len(m.boxes))
	for _, key := range slices.Sorted(maps.Keys(m.boxes)) {
		if len(key) == 1 && !isNameByte(key[0]) {
			continue // a first-byte listener, not a name
		}
		names = append(names, m.boxes[key].name)
	}
	m.mu.Unlock()
	var buf bytes.Buffer
	for _, n := range names {
		buf.WriteString(n)
		buf.WriteString("\r\n")
	}
	return buf.Bytes()
}

// Close closes the Mux's listener, every mailbox listener (their Accept
// returns an error matching net.ErrClosed, and conns not accepted yet are
// closed) and every conn still in the name exchange, then waits for the
// goroutines Serve started. Close is idempotent; it returns the error of
// closing the listener.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return m.err
	}
	m.closed = true
	close(m.closeCh)
	m.err = m.l.Close()
	boxes := slices.Collect(maps.Values(m.boxes))
	clear(m.boxes)
	for c := range m.pending {
		_ = c.Close() // unblocks its exchange, which then exits
	}
	m.mu.Unlock()
	for _, b := range boxes {
		b.close()
	}
	m.wg.Wait()
	return m.err
}

// readName reads "name CRLF" from r without losing bytes: it returns the
// name and the bytes read past the CRLF. It reads in big chunks, not byte
// by byte.
func readName(r io.Reader) (name string, rest []byte, err error) {
	buf := make([]byte, nameBufSize)
	n := 0
	for {
		m, rerr := r.Read(buf[n:])
		n += m
		name, rest, done, err := scanName(buf[:n])
		if done || err != nil {
			return name, rest, err
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return "", nil, fmt.Errorf("reading mailbox name: %w", rerr)
		}
	}
}

// scanName parses "name CRLF" at the start of b. done is false (and err
// nil) while b is a valid but incomplete prefix, which is never longer
// than MaxNameLen+1 bytes.
func scanName(b []byte) (name string, rest []byte, done bool, err error) {
	for i, c := range b {
		if c == '\r' {
			switch {
			case i+1 == len(b):
				return "", nil, false, nil
			case b[i+1] != '\n' || i == 0:
				return "", nil, false, ErrInvalidName
			}
			return string(b[:i]), bytes.Clone(b[i+2:]), true, nil
		}
		if i == MaxNameLen {
			return "", nil, false, errNameTooLong
		}
		if !isNameByte(c) {
			return "", nil, false, ErrInvalidName
		}
	}
	return "", nil, false, nil
}

// A mailbox is the listener of one announced name.
type mailbox struct {
	mux   *Mux
	name  string // as announced
	key   string // lower case
	queue chan net.Conn
	done  chan struct{}

	mu       sync.Mutex
	closed   bool
	reserved int // conns answered "+" and not yet in queue
}

// reserve claims a place in the queue for a conn about to be answered
// "+"; it returns a refusal reason if there is none.
func (b *mailbox) reserve() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return reasonUnknown
	case b.reserved+len(b.queue) >= cap(b.queue):
		return reasonBusy
	}
	b.reserved++
	return ""
}

func (b *mailbox) release() {
	b.mu.Lock()
	b.reserved--
	b.mu.Unlock()
}

// deliver puts c, which holds a reservation, in the queue and reports
// whether it did; it does not if the mailbox was closed meanwhile.
func (b *mailbox) deliver(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved--
	if b.closed {
		return false
	}
	b.queue <- c // never blocks: the reservation kept a place
	return true
}

// Accept waits for the next conn that asked for this mailbox.
func (b *mailbox) Accept() (net.Conn, error) {
	select {
	case c := <-b.queue:
		return c, nil
	case <-b.done:
		return nil, fmt.Errorf("transport: mailbox %q: %w", b.name, net.ErrClosed)
	}
}

// Close withdraws the name and closes the conns not accepted yet.
func (b *mailbox) Close() error {
	if !b.close() {
		return fmt.Errorf("transport: mailbox %q: %w", b.name, net.ErrClosed)
	}
	m := b.mux
	m.mu.Lock()
	if m.boxes[b.key] == b {
		delete(m.boxes, b.key)
	}
	m.mu.Unlock()
	return nil
}

// close closes the mailbox; it reports false if it was closed already.
func (b *mailbox) close() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.closed = true
	close(b.done)
	for {
		select {
		case c := <-b.queue:
			_ = c.Close() // never accepted: nobody else owns it
		default:
			return true
		}
	}
}

// Addr returns the address of the Mux's listener: dial it with
// DialMailbox and this mailbox's name.
func (b *mailbox) Addr() net.Addr { return b.mux.l.Addr() }
