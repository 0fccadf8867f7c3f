package logsink

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

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
	ls, err := Open(Options{Level: slog.LevelDebug, Format: "text"}, f, false)
	if err != nil {
		t.Fatal(err)
	}
	ls.Logger().With("conn", 1).Warn("careful", "n", 2)
	ls.Logger().Info("hello")
	ls.Logger().Debug("details")
	ls.SetLevel(slog.LevelInfo)
	ls.Logger().Debug("hidden")
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
	ls, err := Open(Options{Level: slog.LevelInfo, Format: "json", File: path}, &bytes.Buffer{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ls.Logger().Info("one")
	if err := os.Rename(path, path+".1"); err != nil { // logrotate
		t.Fatal(err)
	}
	if err := ls.Reopen(); err != nil {
		t.Fatal(err)
	}
	ls.Logger().Info("two")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !bytes.Contains(old, []byte(`"msg":"one"`)) || !bytes.Contains(cur, []byte(`"msg":"two"`)) || bytes.Contains(cur, []byte("one")) {
		t.Fatalf("rotated log %q, new log %q", old, cur)
	}
	if !bytes.Contains(cur, []byte(`"time":`)) {
		t.Error("a log file needs timestamps")
	}
}
