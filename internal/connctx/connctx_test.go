package connctx

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipe returns a net.Pipe whose ends fail any I/O after a watchdog, so a stuck read fails the
// test instead of hanging it.
func pipe(t *testing.T) (a, b net.Conn) {
	t.Helper()
	a, b = net.Pipe()
	watchdog := time.Now().Add(10 * time.Second)
	_ = a.SetDeadline(watchdog)
	_ = b.SetDeadline(watchdog)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

func TestDoInterrupts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel func(context.CancelCauseFunc)
		want   error
	}{
		{"cancelled", func(cancel context.CancelCauseFunc) { cancel(nil) }, context.Canceled},
		{"cause", func(cancel context.CancelCauseFunc) { cancel(io.ErrClosedPipe) }, io.ErrClosedPipe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := pipe(t)
			ctx, cancel := context.WithCancelCause(context.Background())
			reading := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- Do(ctx, a, func() error {
					close(reading)
					_, err := a.Read(make([]byte, 1)) // nothing ever comes
					return err
				})
			}()
			<-reading
			tc.cancel(cancel)
			if err := <-done; err != tc.want {
				t.Fatalf("Do = %v, want %v itself", err, tc.want)
			}
			if _, err := a.Read(make([]byte, 1)); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Errorf("a read after the interrupted Do: %v, want a passed deadline", err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDoLeavesDeadlines: when ctx is not done, Do returns f's result and the conn's deadlines are
// the caller's.
func TestDoLeavesDeadlines(t *testing.T) {
	a, b := pipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = b.Write([]byte("x")) }()
	var got [1]byte
	errF := errors.New("f's error")
	err := Do(ctx, a, func() error {
		if _, err := io.ReadFull(a, got[:]); err != nil {
			return err
		}
		return errF
	})
	if err != errF || got[0] != 'x' {
		t.Fatalf("Do = %v, read %q; want f's error after reading x", err, got)
	}
	cancel() // after Do: no effect on a
	go func() { _, _ = b.Write([]byte("y")) }()
	if _, err := io.ReadFull(a, got[:]); err != nil || got[0] != 'y' {
		t.Errorf("read after Do and cancel: %q, %v", got, err)
	}
	if err := Do(context.Background(), a, func() error { return errF }); err != errF {
		t.Errorf("Do with a context that is never done = %v", err)
	}
}
