package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// placeListeners puts dups of the listeners' descriptors at consecutive descriptors, as systemd
// passes them, and returns the first.
func placeListeners(t *testing.T, ls ...net.Listener) int {
	t.Helper()
	first := 0
	for fd := 100; fd < 1000 && first == 0; fd += 10 {
		free := true
		for i := range ls {
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
	for i, l := range ls {
		f, err := l.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Dup2(int(f.Fd()), first+i)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return first
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSystemdListeners(t *testing.T) {
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
	first := placeListeners(t, l4, lu)
	pid := os.Getpid()

	// Not for this process, or no activation at all: nothing, descriptors untouched.
	for _, env := range []map[string]string{
		{},
		{"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "2"},
	} {
		ls, _, err := systemdListeners(envOf(env), pid, first)
		if err != nil || len(ls) != 0 {
			t.Fatalf("env %v: %v, %v; want nothing", env, ls, err)
		}
	}
	if _, err := unix.FcntlInt(uintptr(first), unix.F_GETFD, 0); err != nil {
		t.Fatal("descriptor closed although not ours")
	}
	if _, _, err := systemdListeners(envOf(map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "x"}), pid, first); err == nil {
		t.Fatal("bad LISTEN_FDS accepted")
	}

	ls, names, err := systemdListeners(envOf(map[string]string{
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
	m := newMultiListener(ls)
	defer m.Close()
	for _, dial := range []struct{ network, addr string }{{"tcp", l4.Addr().String()}, {"unix", lu.Addr().String()}} {
		c, err := net.Dial(dial.network, dial.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got.LocalAddr().Network() != dial.network {
			t.Errorf("accepted a %s conn, want %s", got.LocalAddr().Network(), dial.network)
		}
		_ = got.Close()
		_ = c.Close()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

func TestSystemdListenersNotListening(t *testing.T) {
	server, client := acceptOne(t)
	defer server.Close()
	defer client.Close()
	l := connAsListener{server}
	first := placeListeners(t, l)
	_, _, err := systemdListeners(envOf(map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}), os.Getpid(), first)
	_ = unix.Close(first)
	if err == nil || !strings.Contains(err.Error(), "not a listening socket") {
		t.Fatalf("a connected socket: %v, want an error", err)
	}
}

// connAsListener lets placeListeners place a conn's descriptor.
type connAsListener struct{ net.Conn }

func (c connAsListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (c connAsListener) Addr() net.Addr            { return c.LocalAddr() }
func (c connAsListener) File() (*os.File, error)   { return c.Conn.(*net.TCPConn).File() }
func (c connAsListener) Close() error              { return c.Conn.Close() }

var _ interface{ File() (*os.File, error) } = connAsListener{}

func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := newNotifier()
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET still set: children would see it")
	}
	n.send("READY=1")
	n.send(reloadingMessage())
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
	(&notifier{}).send("READY=1") // no socket: nothing, no error
}

func TestLogJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	stream := strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10)
	if !isJournal(f, stream) || isJournal(f, "1:2") || isJournal(f, "") || isJournal(&bytes.Buffer{}, stream) {
		t.Fatal("isJournal does not recognise the stream")
	}
	t.Setenv("JOURNAL_STREAM", stream)
	ls, err := openLog(&options{logLevel: slog.LevelDebug, logFormat: "text"}, f, false)
	if err != nil {
		t.Fatal(err)
	}
	ls.logger.With("conn", 1).Warn("careful", "n", 2)
	ls.logger.Info("hello")
	ls.logger.Debug("details")
	ls.level.Set(slog.LevelInfo)
	ls.logger.Debug("hidden")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "<4>level=WARN msg=careful conn=1 n=2\n<6>level=INFO msg=hello\n<7>level=DEBUG msg=details\n"
	if string(data) != want {
		t.Fatalf("journal lines:\n%q\nwant\n%q", data, want)
	}
}

func TestLogFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rlogind.log")
	ls, err := openLog(&options{logLevel: slog.LevelInfo, logFormat: "json", logFile: path}, &bytes.Buffer{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ls.logger.Info("one")
	if err := os.Rename(path, path+".1"); err != nil { // logrotate
		t.Fatal(err)
	}
	if err := ls.Reopen(); err != nil {
		t.Fatal(err)
	}
	ls.logger.Info("two")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !bytes.Contains(old, []byte(`"msg":"one"`)) || !bytes.Contains(cur, []byte(`"msg":"two"`)) || bytes.Contains(cur, []byte("one")) {
		t.Fatalf("rotated log %q, new log %q", old, cur)
	}
	if !bytes.Contains(cur, []byte(`"time":`)) {
		t.Error("a log file needs timestamps")
	}
}

// TestNotifyReload: each signal makes one reload; signals arriving before the last was taken
// count as one.
func TestNotifyReload(t *testing.T) {
	ch, stop := NotifyReload([]os.Signal{syscall.SIGUSR1})
	defer stop()
	for range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(shortTimeout):
			t.Fatal("no reload after the signal")
		}
	}
	stop()
	stop()
	none, stopNone := NotifyReload(nil)
	defer stopNone()
	select {
	case <-none:
		t.Fatal("reload without signals")
	default:
	}
}
