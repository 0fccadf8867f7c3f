// Package connctx runs I/O on a net.Conn under a context, as net.Dialer.DialContext runs a dial:
// when the context is done, the pending and later I/O on the conn fails at once.
//
// Typical usage:
//
//	err := connctx.Do(ctx, conn, func() error { return handshake(conn) })
//	if err != nil && err == context.Cause(ctx) {
//		// ctx was done first; conn keeps a deadline in the past: close it
//	}
//
// It is how the session and classic clients bound their login with a context.
package connctx

import (
	"context"
	"net"
	"time"
)

// Do runs f, which does I/O on c, and interrupts that I/O when ctx is done, by setting a deadline
// in the past on c. If ctx is done before f returns, Do returns context.Cause(ctx) itself (not
// f's error, which then only says that a deadline passed), and c keeps that deadline: the caller
// is expected to close c. Otherwise it returns f's error and leaves c's deadlines as they were.
func Do(ctx context.Context, c net.Conn, f func() error) error {
	if ctx.Done() == nil {
		return f() // never done: nothing to watch
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = c.SetDeadline(time.Unix(1, 0)) // in the past: pending I/O fails
	})
	err := f()
	if !stop() {
		<-interrupted // the goroutine that set the deadline is done with c
		return context.Cause(ctx)
	}
	return err
}
