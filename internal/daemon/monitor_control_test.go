package daemon

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"golang.org/x/sys/unix"
)

// controlPair returns the two ends of a control socket (SOCK_SEQPACKET), closed at the test's
// end, with a watchdog deadline.
func controlPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	a, b, err := privsep.Pair()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := packetConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := packetConn(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*net.UnixConn{ca, cb} {
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(shortTimeout))
	}
	return ca, cb
}

func TestControlEvents(t *testing.T) {
	a, b := controlPair(t)
	mine, theirs, err := streamPair()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	defer theirs.Close()
	want := controlResume{controlUser: controlUser{User: "bob", UID: 1001}, ID: [16]byte{1, 2, 3}, Reattach: true, Peer: "192.0.2.1:513"}
	if err := sendControl(a, eventResume, want, theirs); err != nil {
		t.Fatal(err)
	}
	if err := sendControl(a, eventEnded, nil, nil); err != nil {
		t.Fatal(err)
	}
	rd := newControlReader(b)
	ev, fields, fd, err := rd.read()
	if err != nil || ev != eventResume || fd == nil {
		t.Fatalf("read = %c, %s, %v, %v; want RESUME with a descriptor", ev, fields, fd, err)
	}
	defer fd.Close()
	var got controlResume
	if err := json.Unmarshal(fields, &got); err != nil || got != want {
		t.Errorf("fields %+v (%v), want %+v", got, err, want)
	}
	// The descriptor is the socket: what goes in one end comes out of the passed one.
	if _, err := mine.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(fd, buf); err != nil || string(buf) != "ping" {
		t.Errorf("through the passed socket: %q, %v", buf, err)
	}
	if ev, fields, fd, err := rd.read(); err != nil || ev != eventEnded || len(fields) != 0 || fd != nil {
		t.Errorf("read = %c, %q, %v, %v; want ENDED alone", ev, fields, fd, err)
	}
	_ = a.Close()
	if _, _, _, err := rd.read(); !errors.Is(err, io.EOF) {
		t.Errorf("read after the peer's close: %v, want io.EOF", err)
	}
}

func TestControlRefuses(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	nullFd := int(devnull.Fd())
	for _, tc := range []struct {
		name string
		b    []byte
		fds  []int
		want string
	}{
		{"too long", append([]byte{eventList}, make([]byte, maxControlLen)...), nil, "too long"},
		{"two descriptors", []byte{eventResume}, []int{nullFd, nullFd}, "more than one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := controlPair(t)
			before := openFds(t)
			raw, err := a.File()
			if err != nil {
				t.Fatal(err)
			}
			err = unix.Sendmsg(int(raw.Fd()), tc.b, unix.UnixRights(tc.fds...), nil, 0)
			_ = raw.Close()
			if err != nil {
				t.Fatal(err)
			}
			_, _, fd, err := newControlReader(b).read()
			if err == nil || !strings.Contains(err.Error(), tc.want) || fd != nil {
				t.Errorf("read = %v, %v; want an error about %q", fd, err, tc.want)
			}
			if after := openFds(t); after != before {
				t.Errorf("%d descriptors open after the refusal, %d before", after, before)
			}
		})
	}
}

// openFds counts this process's open descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSeparatedSessionsRegistry: the listener lists and passes on a session to its own user
// only (the same name and uid), reflects detaches and attaches, and forgets a session that
// ended.
func TestSeparatedSessionsRegistry(t *testing.T) {
	reg := newSeparatedSessions()
	listener, monitor := controlPair(t)
	m := &monitorProc{control: listener}
	started := time.Unix(1765000000, 0)
	reg1, _ := json.Marshal(controlSession{ID: [16]byte{1}, User: "bob", UID: 1001, PID: 42, Started: started, Peer: "192.0.2.1:50000", What: "xterm"})
	bob := controlUser{User: "bob", UID: 1001}
	e := reg.update(nil, m, eventResumable, reg1)
	if e == nil {
		t.Fatal("not registered")
	}
	if again := reg.update(nil, m, eventResumable, reg1); again != nil {
		t.Error("an id registered twice")
	}
	for _, u := range []controlUser{{User: "alice", UID: 1001}, {User: "bob", UID: 1002},
		{User: "bob", UID: 1001, Forced: "backup"}, {User: "bob", UID: 1001, NoPTY: true}} {
		if list := reg.list(u); len(list) != 0 {
			t.Errorf("%+v sees %+v", u, list)
		}
	}
	want := privsep.SessionEntry{ID: [16]byte{1}, Attached: true, Started: 1765000000, Peer: "192.0.2.1:50000", What: "xterm", PID: 42}
	if list := reg.list(bob); len(list) != 1 || list[0] != want {
		t.Errorf("bob's list %+v, want %+v", list, want)
	}
	reg.update(e, m, eventDetached, nil)
	if list := reg.list(bob); len(list) != 1 || list[0].Attached || list[0].Detached == 0 {
		t.Errorf("detached: %+v", list)
	}
	peer, _ := json.Marshal(controlPeer{Peer: "198.51.100.7:40000"})
	reg.update(e, m, eventAttached, peer)
	if list := reg.list(bob); len(list) != 1 || !list[0].Attached || list[0].Peer != "198.51.100.7:40000" {
		t.Errorf("attached again: %+v", list)
	}

	mine, theirs, err := streamPair()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	defer theirs.Close()
	for _, tc := range []struct {
		name string
		req  controlResume
		ok   bool
	}{
		{"another user", controlResume{controlUser: controlUser{User: "alice", UID: 1001}, ID: [16]byte{1}}, false},
		{"another uid", controlResume{controlUser: controlUser{User: "bob", UID: 0}, ID: [16]byte{1}}, false},
		{"unknown id", controlResume{controlUser: bob, ID: [16]byte{2}}, false},
		{"a key with a forced command", controlResume{controlUser: controlUser{User: "bob", UID: 1001, Forced: "backup"}, ID: [16]byte{1}}, false},
		{"its user", controlResume{controlUser: bob, ID: [16]byte{1}, Reattach: true, Peer: "203.0.113.9:1"}, true},
	} {
		if got := reg.attach(tc.req, theirs); got != tc.ok {
			t.Errorf("%s: attach = %v, want %v", tc.name, got, tc.ok)
		}
	}
	ev, fields, fd, err := newControlReader(monitor).read()
	if err != nil || ev != commandAttach || fd == nil {
		t.Fatalf("the session's monitor got %c, %v, %v; want ATTACH with the socket", ev, fd, err)
	}
	_ = fd.Close()
	var ca controlAttach
	if err := json.Unmarshal(fields, &ca); err != nil || ca != (controlAttach{Reattach: true, Peer: "203.0.113.9:1"}) {
		t.Errorf("ATTACH %+v (%v)", ca, err)
	}

	reg.remove(e)
	if list := reg.list(bob); len(list) != 0 {
		t.Errorf("after the end: %+v", list)
	}
	if reg.attach(controlResume{controlUser: bob, ID: [16]byte{1}}, theirs) {
		t.Error("an ended session passed on")
	}
}
