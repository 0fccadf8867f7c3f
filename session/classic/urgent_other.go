//go:build !linux

package classic

import (
	"errors"
	"net"
	"syscall"
)

// Urgent data is implemented on Linux only; elsewhere the classic protocol runs without it
// (no window requests, flushes or flow-control changes).

var errStopped = errors.New("classic: reader stopped")
var errAgain = errors.New("classic: no data yet")

type urgentState int

const (
	urgentGot urgentState = iota
	urgentNone
	urgentNotYet
)

func rawConnOf(c net.Conn) syscall.RawConn { return nil }

func sendUrgent(rc syscall.RawConn, c byte) error { return nil }

func tuneServerSocket(rc syscall.RawConn) {}

type socketReader struct{}

func newSocketReader(rc syscall.RawConn) (*socketReader, error) {
	return nil, errors.New("classic: urgent data is not supported on this platform")
}

func (r *socketReader) wait(wantData, wantEnd bool) (bool, bool, error) {
	return false, false, errStopped
}
func (r *socketReader) read(b []byte) (int, error)             { return 0, errStopped }
func (r *socketReader) readUrgent() (byte, urgentState, error) { return 0, urgentNone, nil }
func (r *socketReader) atMark() (bool, error)                  { return false, nil }
func (r *socketReader) wakeup()                                {}
func (r *socketReader) stop()                                  {}
func (r *socketReader) close()                                 {}
