package systemlogin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestUtmpLayouts(t *testing.T) {
	for _, arch := range []string{"amd64", "386", "arm", "riscv64", "arm64"} {
		l := utmpLayoutOf(arch)
		if l.unsupported {
			t.Fatalf("%s: no layout", arch)
		}
		rec := utmpRecord{typ: utUserProcess, pid: 4242, line: "pts/17", id: [4]byte{'s', '/', '1', '7'},
			user: "alice", host: "2001:db8::1", time: time.Unix(1764165600, 123456000)}
		b := rec.marshal(l)
		if int64(len(b)) != l.size {
			t.Fatalf("%s: %d bytes, want %d", arch, len(b), l.size)
		}
		if got := unmarshalUtmp(l, b); got != rec {
			t.Errorf("%s: round trip: got %+v, want %+v", arch, got, rec)
		}
	}
	if !utmpLayoutOf("mips64").unsupported {
		t.Error("a layout for an unknown GOARCH")
	}
}

// writeRecords writes recs to a new file of login records in dir.
func writeRecords(t *testing.T, dir, name string, recs ...utmpRecord) string {
	t.Helper()
	l := utmpLayoutOf(runtime.GOARCH)
	var b []byte
	for _, r := range recs {
		b = append(b, r.marshal(l)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o664); err != nil {
		t.Fatal(err)
	}
	return path
}

func readRecords(t *testing.T, path string) []utmpRecord {
	t.Helper()
	l := utmpLayoutOf(runtime.GOARCH)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b))%l.size != 0 {
		t.Fatalf("%s: %d bytes, not a whole number of records", path, len(b))
	}
	var recs []utmpRecord
	for ; len(b) > 0; b = b[l.size:] {
		recs = append(recs, unmarshalUtmp(l, b[:l.size]))
	}
	return recs
}

// TestRecordLogout writes a session's logout after a login record like login(1)'s and checks
// the files as glibc's logout(3) and logwtmp(3) would leave them, and last(1) reads them.
func TestRecordLogout(t *testing.T) {
	if utmpLayoutOf(runtime.GOARCH).unsupported {
		t.Skipf("no struct utmp layout for %s", runtime.GOARCH)
	}
	dir := t.TempDir()
	login := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	other := utmpRecord{typ: utUserProcess, pid: 10, line: "pts/1", id: [4]byte{'/', '1'}, user: "bob", host: "192.0.2.9", time: login}
	mine := utmpRecord{typ: utUserProcess, pid: 4242, line: "pts/7", id: [4]byte{'/', '7'}, user: "alice", host: "192.0.2.1", time: login}
	utmp := writeRecords(t, dir, "utmp", other, mine)
	wtmp := writeRecords(t, dir, "wtmp", other, mine)
	// A torn record at the end of wtmp, as a crash leaves it: cut off before the append.
	f, err := os.OpenFile(wtmp, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("torn"))
	_ = f.Close()

	logout := login.Add(75 * time.Minute)
	if err := recordLogout(utmp, wtmp, "pts/7", 4242, logout); err != nil {
		t.Fatal(err)
	}
	u := readRecords(t, utmp)
	if len(u) != 2 || u[0] != other {
		t.Fatalf("utmp: %+v", u)
	}
	want := utmpRecord{typ: utDeadProcess, pid: 4242, line: "pts/7", id: mine.id, time: logout}
	if u[1] != want {
		t.Errorf("utmp entry after logout: %+v, want %+v", u[1], want)
	}
	w := readRecords(t, wtmp)
	if len(w) != 3 || w[1] != mine {
		t.Fatalf("wtmp: %+v", w)
	}
	if want.id = [4]byte{}; w[2] != want {
		t.Errorf("wtmp logout record: %+v, want %+v", w[2], want)
	}

	// A second logout for the line finds no live utmp entry and only appends to wtmp.
	if err := recordLogout(utmp, wtmp, "pts/7", 4242, logout); err != nil {
		t.Fatal(err)
	}
	if n := len(readRecords(t, utmp)); n != 2 {
		t.Errorf("utmp has %d records after a second logout, want 2", n)
	}

	// Missing files are not created.
	if err := recordLogout(filepath.Join(dir, "no-utmp"), filepath.Join(dir, "no-wtmp"), "pts/7", 1, logout); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "no-wtmp")); !os.IsNotExist(err) {
		t.Errorf("a missing wtmp was created: %v", err)
	}
	for _, line := range []string{"", strings.Repeat("x", 33)} {
		if err := recordLogout(utmp, wtmp, line, 1, logout); err == nil {
			t.Errorf("line %q accepted", line)
		}
	}

	// util-linux last(1) pairs the login with the logout: 01:15 of session.
	lastPath, err := exec.LookPath("last")
	if err != nil {
		t.Skip("no last(1) to read the records (Debian package util-linux)")
	}
	out, err := exec.Command(lastPath, "-w", "-f", wtmp, "alice").CombinedOutput()
	if err != nil {
		t.Fatalf("last: %v\n%s", err, out)
	}
	first, _, _ := bytes.Cut(out, []byte("\n"))
	if !bytes.Contains(first, []byte("pts/7")) || !bytes.Contains(first, []byte("192.0.2.1")) ||
		!bytes.Contains(first, []byte("(01:15)")) {
		t.Errorf("last does not show the session with its logout:\n%s", out)
	}
}

func TestRecordLogin(t *testing.T) {
	dir := t.TempDir()
	other := utmpRecord{typ: utUserProcess, pid: 7, line: "pts/1", id: [4]byte{'t', 's', '/', '1'}, user: "bob", time: time.Unix(1764165600, 0)}
	utmp := writeRecords(t, dir, "utmp", other)
	now := time.Unix(1764169200, 0)
	if err := recordLogin(utmp, "pts/12", "alice", "192.0.2.7", 4242, now); err != nil {
		t.Fatal(err)
	}
	want := utmpRecord{typ: utUserProcess, pid: 4242, line: "pts/12", id: [4]byte{'s', '/', '1', '2'}, user: "alice", host: "192.0.2.7", time: now}
	if got := readRecords(t, utmp); len(got) != 2 || got[0] != other || got[1] != want {
		t.Fatalf("after the login: %+v, want %+v then %+v", got, other, want)
	}
	// The line's next session takes the same entry, and the logout marks it dead.
	if err := recordLogin(utmp, "pts/12", "carol", "", 4343, now); err != nil {
		t.Fatal(err)
	}
	if err := recordLogout(utmp, filepath.Join(dir, "no-wtmp"), "pts/12", 4343, now); err != nil {
		t.Fatal(err)
	}
	got := readRecords(t, utmp)
	if len(got) != 2 || got[1].typ != utDeadProcess || got[1].pid != 4343 || got[1].id != want.id {
		t.Fatalf("after the second session: %+v", got)
	}
	if err := recordLogin(filepath.Join(dir, "none"), "pts/12", "alice", "", 1, now); err != nil {
		t.Errorf("a missing utmp: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Error("a missing utmp was created")
	}
}
