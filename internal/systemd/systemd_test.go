package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// shortTimeout bounds every single wait in these tests.
const shortTimeout = 20 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// placeFiles puts dups of the files' descriptors at consecutive descriptors, as systemd passes
// them, and returns the first; it closes the files.
func placeFiles(t *testing.T, files ...*os.File) int {
	t.Helper()
	first := 0
	for fd := 100; fd < 1000 && first == 0; fd += 10 {
		free := true
		for i := range files {
			if _, err := unix.FcntlInt(uintptr(fd+i), unix.F_GETFD, 0); err == nil {
				free = false
			}
		}
		if free {
			first = fd
		}
	}
	if first == 0 {
		t.Fatal("no free descriptors")
	}
	for i, f := range files {
		err := unix.Dup2(int(f.Fd()), first+i)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return first
}

// fileOf returns a duplicate of l's descriptor.
func fileOf(t *testing.T, l net.Listener) *os.File {
	t.Helper()
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestListeners(t *testing.T) {
	l4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	lu, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lu.Close()
	first := placeFiles(t, fileOf(t, l4), fileOf(t, lu))
	pid := os.Getpid()

	// Not for this process, or no activation at all: nothing, descriptors untouched.
	for _, env := range []map[string]string{
		{},
		{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "2"},
	} {
		ls, _, err := Listeners(envOf(env), pid, first)
		if err != nil || len(ls) != 0 {
			t.Fatalf("env %v: %v, %v; want nothing", env, ls, err)
		}
	}
	if _, err := unix.FcntlInt(uintptr(first), unix.F_GETFD, 0); err != nil {
		t.Fatal("descriptor closed although not ours")
	}
	if _, _, err := Listeners(envOf(map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "x"}), pid, first); err == nil {
		t.Fatal("bad LISTEN_FDS accepted")
	}

	ls, names, err := Listeners(envOf(map[string]string{
		"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "rlogind.socket",
	}), pid, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || strings.Join(names, ",") != "rlogind.socket,LISTEN_FD_"+strconv.Itoa(first+1) {
		t.Fatalf("got %d listeners named %q", len(ls), names)
	}
	for i := range 2 {
		if flags, err := unix.FcntlInt(uintptr(first+i), unix.F_GETFD, 0); err == nil {
			t.Errorf("descriptor %d still open (flags %#x): it is the listener's to close", first+i, flags)
		}
	}
	// They are the sockets placed above, and the listeners own them now.
	for i, want := range []net.Listener{l4, lu} {
		if got := ls[i].Addr(); got.Network() != want.Addr().Network() || got.String() != want.Addr().String() {
			t.Errorf("listener %d on %s %s, want %s %s", i, got.Network(), got, want.Addr().Network(), want.Addr())
		}
		if err := ls[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListenersNotListening(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	first := placeFiles(t, os.NewFile(uintptr(fds[0]), "connected"))
	_, _, err = Listeners(envOf(map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}), os.Getpid(), first)
	_ = unix.Close(first)
	if err == nil || !strings.Contains(err.Error(), "not a listening socket") {
		t.Fatalf("a connected socket: %v, want an error", err)
	}
}

func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := NewNotifier()
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET still set: children would see it")
	}
	n.Send(Ready)
	n.Send(ReloadingMessage())
	buf := make([]byte, 256)
	_ = pc.SetReadDeadline(time.Now().Add(shortTimeout))
	for _, want := range []string{"READY=1", "RELOADING=1\nMONOTONIC_USEC="} {
		k, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(buf[:k]), want) {
			t.Errorf("got %q, want %q...", buf[:k], want)
		}
	}
	(&Notifier{}).Send(Ready) // no socket: nothing, no error
}

func TestListenFDs(t *testing.T) {
	pid := os.Getpid()
	me := strconv.Itoa(pid)
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{}, 0},
		{map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "2"}, 2},
		{map[string]string{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "2"}, 0}, // inherited variables
		{map[string]string{"LISTEN_FDS": "2"}, 0},
		{map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "x"}, 0},  // Listeners reports it
		{map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "65"}, 0}, // above maxListenFDs
		{map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "-1"}, 0},
	} {
		if got := ListenFDs(envOf(tc.env), pid); got != tc.want {
			t.Errorf("ListenFDs(%v) = %d, want %d", tc.env, got, tc.want)
		}
	}
}
