package privsep

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchdog bounds the channel operations of t.
func watchdog(t *testing.T, chs ...*Channel) {
	t.Helper()
	for _, ch := range chs {
		if err := ch.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChannelSendReceive(t *testing.T) {
	monitor, netc := channels(t)
	watchdog(t, monitor, netc)
	for _, m := range validMessages(t) {
		from, to := monitor, netc
		if m.Type().request() {
			from, to = netc, monitor
		}
		var files []*os.File
		if m.Type() == TypeAccept {
			f, err := os.Open("/dev/null") // a character device, as a pty master is
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			files = append(files, f)
		}
		if m.Type() == TypePipes {
			files = commandPipes(t)
		}
		if m.Type() == TypeRelay || m.Type() == TypeAttach {
			files = streamSockets(t)[:1]
		}
		if err := from.Send(m, files...); err != nil {
			t.Fatalf("Send(%v): %v", m.Type(), err)
		}
		got, gotFiles, err := to.Receive()
		if err != nil {
			t.Fatalf("Receive after %v: %v", m.Type(), err)
		}
		if got.Type() != m.Type() || len(gotFiles) != len(files) {
			t.Fatalf("sent %v with %d files, received %v with %d", m.Type(), len(files), got.Type(), len(gotFiles))
		}
		for _, f := range gotFiles {
			flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("received descriptor flags %#x, %v: want close-on-exec", flags, err)
			}
			f.Close()
		}
	}
}

func TestChannelSendRefuses(t *testing.T) {
	monitor, netc := channels(t)
	watchdog(t, monitor, netc)
	devnull, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, tc := range []struct {
		name  string
		ch    *Channel
		m     Message
		files []*os.File
	}{
		{"a reply from the net side", netc, &Accept{}, []*os.File{devnull}},
		{"a request from the monitor", monitor, &Hangup{}, nil},
		{"ACCEPT without its pty", monitor, &Accept{}, nil},
		{"PIPES with one", monitor, &Pipes{}, []*os.File{devnull}},
		{"a descriptor with REFUSE", monitor, &Refuse{}, []*os.File{devnull}},
		{"an invalid field", netc, &Answer{Text: "a\nb"}, nil},
	} {
		if err := tc.ch.Send(tc.m, tc.files...); err == nil {
			t.Errorf("%s: sent", tc.name)
		}
	}
}

// commandPipes returns the three ends PIPES carries: the write end of a pipe, then the read
// ends of two; the test closes them all at its end.
func commandPipes(t *testing.T) []*os.File {
	t.Helper()
	var ends []*os.File
	for i := range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		if i == 0 {
			ends = append(ends, w)
		} else {
			ends = append(ends, r)
		}
	}
	return ends
}

// streamSockets returns the two ends of a Unix stream socketpair, which RELAY and ATTACH
// carry; the test closes them at its end.
func streamSockets(t *testing.T) []*os.File {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ends := []*os.File{os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")}
	t.Cleanup(func() { ends[0].Close(); ends[1].Close() })
	return ends
}

// rawSend sends b with fds on f's socket, as a hostile peer would, without the checks of Send.
func rawSend(t *testing.T, f *os.File, b []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(int(f.Fd()), b, oob, nil, 0); err != nil {
		t.Fatal(err)
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

func TestChannelReceiveRefuses(t *testing.T) {
	hangup, _ := encode(&Hangup{})
	accept, _ := encode(&Accept{})
	devnull, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	nullFd, pipeFd, pipeWFd := int(devnull.Fd()), int(pipeR.Fd()), int(pipeW.Fd())
	pipes, _ := encode(&Pipes{})
	relay, _ := encode(&Relay{})
	attach, _ := encode(&Attach{})
	packetA, packetB, err := Pair() // a Unix socket, but not a stream one
	if err != nil {
		t.Fatal(err)
	}
	defer packetA.Close()
	defer packetB.Close()
	packetFd := int(packetA.Fd())
	for _, tc := range []struct {
		name string
		side Side // the receiver
		b    []byte
		fds  []int
		want string
	}{
		{"a descriptor with HANGUP", MonitorSide, hangup, []int{nullFd}, "descriptors"},
		{"ACCEPT without a descriptor", NetSide, accept, nil, "descriptors"},
		{"ACCEPT with two", NetSide, accept, []int{nullFd, nullFd}, "descriptors"},
		{"ACCEPT with a pipe", NetSide, accept, []int{pipeFd}, "character device"},
		{"PIPES with a device", NetSide, pipes, []int{nullFd, pipeFd, pipeFd}, "not a pipe"},
		{"PIPES with stdin read", NetSide, pipes, []int{pipeFd, pipeFd, pipeFd}, "access mode"},
		{"PIPES with stderr written", NetSide, pipes, []int{pipeWFd, pipeFd, pipeWFd}, "access mode"},
		{"PIPES with two", NetSide, pipes, []int{pipeWFd, pipeFd}, "descriptors"},
		{"ACCEPT with many", NetSide, accept, []int{nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd, nullFd}, "descriptors"},
		{"RELAY with a device", NetSide, relay, []int{nullFd}, "not a socket"},
		{"RELAY with a packet socket", NetSide, relay, []int{packetFd}, "not a Unix stream socket"},
		{"ATTACH with a pipe", NetSide, attach, []int{pipeFd}, "not a socket"},
		{"ATTACH without a descriptor", NetSide, attach, nil, "descriptors"},
		{"a reply to the monitor", MonitorSide, accept, []int{nullFd}, "unexpected"},
		{"a request to the net child", NetSide, hangup, nil, "unexpected"},
		{"too long", MonitorSide, append(hangup, make([]byte, MaxMessageLen)...), nil, "limit"},
		{"bad fields", MonitorSide, []byte{byte(TypeAnswer), 0, 1, '\n'}, nil, "ANSWER"},
		{"SIGN of other content", MonitorSide, append([]byte{byte(TypeSign), 0, 5}, "hello"...), nil, "bad SIGN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf, nf, err := Pair()
			if err != nil {
				t.Fatal(err)
			}
			// Both ends are closed here: a peer left to the garbage collector's finalizer
			// closes at a random time, which made the descriptor count below flaky.
			defer mf.Close()
			defer nf.Close()
			peer, mine := mf, nf
			if tc.side == MonitorSide {
				peer, mine = nf, mf
			}
			before := openFds(t)
			ch, err := NewFileChannel(mine, tc.side)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			watchdog(t, ch)
			rawSend(t, peer, tc.b, tc.fds...)
			m, files, err := ch.Receive()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Receive = %v, %d files, %v; want an error about %q", m, len(files), err, tc.want)
			}
			// The Channel's dup of mine replaced mine: the count is as before unless a received
			// descriptor was left open.
			if after := openFds(t); after != before {
				t.Errorf("%d descriptors open after the refusal, %d before: received ones leaked", after, before)
			}
		})
	}
}

func TestChannelEOFAndClose(t *testing.T) {
	monitor, netc := channels(t)
	watchdog(t, monitor, netc)
	done := make(chan error, 1)
	go func() {
		_, _, err := monitor.Receive()
		done <- err
	}()
	netc.Close()
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Errorf("Receive after the peer's close: %v, want io.EOF", err)
	}
	monitor.Close()
	if _, _, err := monitor.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close: %v, want net.ErrClosed", err)
	}
}

func TestChannelDeadline(t *testing.T) {
	monitor, _ := channels(t)
	if err := monitor.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := monitor.Receive(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Receive past its deadline: %v", err)
	}
}

func TestNewChannelRefusesStreams(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	if _, err := NewChannel(a, MonitorSide); err == nil {
		t.Error("NewChannel took a net.Pipe")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if _, err := NewFileChannel(os.NewFile(uintptr(fds[0]), "stream"), NetSide); err == nil {
		t.Error("NewFileChannel took a SOCK_STREAM socket")
	}
}

// TestChannelConcurrentSends: messages sent from several goroutines at once arrive whole.
func TestChannelConcurrentSends(t *testing.T) {
	monitor, netc := channels(t)
	watchdog(t, monitor, netc)
	const senders, each = 4, 50
	errs := make(chan error, senders)
	for i := range senders {
		go func() {
			for range each {
				if err := netc.Send(&Answer{Text: strings.Repeat(string(rune('a'+i)), 400)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders * each {
		m, _, err := monitor.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if text := m.(*Answer).Text; strings.Trim(text, text[:1]) != "" || len(text) != 400 {
			t.Fatalf("received a mixed or cut answer %q", text)
		}
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
