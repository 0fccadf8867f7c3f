//go:build linux

package session

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// remoteTerminal is a fakeTerminal whose shell another process reaps, as far as Serve can tell:
// Wait gives no state, WaitStatus the wait status (or waitErr).
type remoteTerminal struct {
	*fakeTerminal
	waitErr error
}

func (r remoteTerminal) Wait() (*os.ProcessState, error) {
	_, err := r.WaitStatus()
	return nil, err
}

func (r remoteTerminal) WaitStatus() (syscall.WaitStatus, error) {
	st, err := r.fakeTerminal.Wait()
	if err != nil {
		return 0, err
	}
	if r.waitErr != nil {
		return 0, r.waitErr
	}
	return st.Sys().(syscall.WaitStatus), nil
}

// serveRemote runs a session of term to its end and returns what Serve and Client.Wait returned.
func serveRemote(t *testing.T, term remoteTerminal) (served, error) {
	t.Helper()
	c, s := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := NewServerConn(s)
	res := make(chan served, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			res <- served{nil, err}
			return
		}
		st, err := srv.Serve(ctx, term)
		res <- served{st, err}
	}()
	cl := NewClient(c, bob)
	cl.Stdout = newSyncBuffer()
	if err := cl.Start(ctx); err != nil {
		_ = cl.Close()
		<-res
		t.Fatalf("Start: %v", err)
	}
	err := cl.Wait()
	return <-res, err // the context is Serve's watchdog
}

// TestStatusWaiter: a Terminal whose shell another process reaps gives the client the status
// WaitStatus reports, and Serve returns no state.
func TestStatusWaiter(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want *ExitError
	}{
		{"status 0", []string{"true"}, nil},
		{"status 3", []string{"sh", "-c", "exit 3"}, &ExitError{Status: 3}},
		{"SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, &ExitError{Signal: "KILL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := serveRemote(t, remoteTerminal{fakeTerminal: newFakeTerminal(t, tc.args...)})
			if srv.state != nil || srv.err != nil {
				t.Errorf("Serve: %v, %v; want a nil state and no error", srv.state, srv.err)
			}
			var exit *ExitError
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("Wait: %v, want nil", err)
			case tc.want != nil && (!errors.As(err, &exit) || *exit != *tc.want):
				t.Errorf("Wait: %v, want %+v", err, *tc.want)
			}
		})
	}
}

// TestStatusWaiterFails: when WaitStatus fails, the client learns that the status is unknown, and
// Serve says why.
func TestStatusWaiterFails(t *testing.T) {
	lost := errors.New("the monitor is gone")
	srv, err := serveRemote(t, remoteTerminal{fakeTerminal: newFakeTerminal(t, "true"), waitErr: lost})
	if srv.state != nil || !errors.Is(srv.err, lost) {
		t.Errorf("Serve: %v, %v; want a nil state and an error matching %v", srv.state, srv.err, lost)
	}
	var closed *ClosedError
	if !errors.As(err, &closed) || !strings.Contains(closed.Reason, "unknown") {
		t.Errorf("Wait: %v, want a ClosedError saying the status is unknown", err)
	}
}

// TestExitOf: a wait status converts as the state that holds it does.
func TestExitOf(t *testing.T) {
	for _, tc := range []struct {
		ws   syscall.WaitStatus
		want ExitError
	}{
		{0, ExitError{}},
		{3 << 8, ExitError{Status: 3}},
		{255 << 8, ExitError{Status: 255}},
		{syscall.WaitStatus(syscall.SIGKILL), ExitError{Signal: "KILL"}},
		{syscall.WaitStatus(syscall.SIGSEGV) | 0x80, ExitError{Signal: "SEGV", CoreDumped: true}},
		{0x137f, ExitError{Status: 255}}, // stopped by SIGSTOP: no exit status
	} {
		if got := exitOf(tc.ws); got != tc.want {
			t.Errorf("exitOf(%#x) = %+v, want %+v", uint32(tc.ws), got, tc.want)
		}
	}
}
