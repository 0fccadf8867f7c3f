package systemlogin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Login records. login(1) writes the login record of a session to wtmp (and utmp, where the
// system keeps one); the logout record is the job of whoever started login(1), as in.rlogind
// and telnetd do (logwtmp(line, "", "")): without it last(1) shows the session as still logged
// in. The daemon writes it when the session ends, as glibc's logout(3) and logwtmp(3) would:
// the utmp entry of the line becomes DEAD_PROCESS, and a DEAD_PROCESS record for the line is
// appended to wtmp.

// The files of login records (paths.h's _PATH_UTMP and _PATH_WTMP).
const (
	utmpPath = "/var/run/utmp"
	wtmpPath = "/var/log/wtmp"
)

// utmp(5) record types used here.
const (
	utLoginProcess = 6
	utUserProcess  = 7
	utDeadProcess  = 8
)

// The layout of glibc's struct utmp on Linux, in host byte order. Up to ut_exit it is the same
// everywhere; what follows depends on __WORDSIZE_TIME64_COMPAT32.
const (
	utTypeOff = 0   // int16
	utPidOff  = 4   // int32
	utLineOff = 8   // [32]byte
	utLineLen = 32  //
	utIDOff   = 40  // [4]byte
	utUserOff = 44  // [32]byte
	utUserLen = 32  //
	utHostOff = 76  // [256]byte
	utHostLen = 256 //
)

// utmpLayout is the rest of the layout: where ut_tv is and how wide its fields are.
type utmpLayout struct {
	size        int64 // of a record
	tvSecOff    int   // ut_tv.tv_sec
	tvUsecOff   int   // ut_tv.tv_usec
	tv64        bool  // tv_sec and tv_usec are 64-bit
	unsupported bool  // the layout of this GOARCH is not known
}

// utmpLayoutOf returns the layout of struct utmp on goarch: on 32-bit ports and on 64-bit ports
// with __WORDSIZE_TIME64_COMPAT32 (amd64, riscv64), ut_session and ut_tv hold 32-bit fields
// and a record is 384 bytes; on arm64 (no compatibility) they are longs and it is 400 bytes.
func utmpLayoutOf(goarch string) utmpLayout {
	switch goarch {
	case "amd64", "386", "arm", "riscv64":
		return utmpLayout{size: 384, tvSecOff: 340, tvUsecOff: 344}
	case "arm64":
		return utmpLayout{size: 400, tvSecOff: 344, tvUsecOff: 352, tv64: true}
	}
	return utmpLayout{unsupported: true}
}

// lockTimeout bounds the wait for the lock of a login records file; glibc waits 10 s, but a
// session's end must not wait that long for a bookkeeping record.
const lockTimeout = time.Second

// utmpRecord is the part of a utmp record the daemon reads and writes.
type utmpRecord struct {
	typ  int16
	pid  int32
	line string // "pts/3"
	id   [4]byte
	user string
	host string
	time time.Time
}

func (r *utmpRecord) marshal(l utmpLayout) []byte {
	b := make([]byte, l.size)
	ne := binary.NativeEndian
	ne.PutUint16(b[utTypeOff:], uint16(r.typ))
	ne.PutUint32(b[utPidOff:], uint32(r.pid))
	copy(b[utLineOff:utLineOff+utLineLen], r.line)
	copy(b[utIDOff:utIDOff+4], r.id[:])
	copy(b[utUserOff:utUserOff+utUserLen], r.user)
	copy(b[utHostOff:utHostOff+utHostLen], r.host)
	if l.tv64 {
		ne.PutUint64(b[l.tvSecOff:], uint64(r.time.Unix()))
		ne.PutUint64(b[l.tvUsecOff:], uint64(r.time.Nanosecond()/1000))
	} else {
		ne.PutUint32(b[l.tvSecOff:], uint32(r.time.Unix()))
		ne.PutUint32(b[l.tvUsecOff:], uint32(r.time.Nanosecond()/1000))
	}
	return b
}

// unmarshalUtmp decodes a record of layout l; b holds l.size bytes.
func unmarshalUtmp(l utmpLayout, b []byte) utmpRecord {
	ne := binary.NativeEndian
	str := func(f []byte) string {
		if i := bytes.IndexByte(f, 0); i >= 0 {
			f = f[:i]
		}
		return string(f)
	}
	r := utmpRecord{
		typ:  int16(ne.Uint16(b[utTypeOff:])),
		pid:  int32(ne.Uint32(b[utPidOff:])),
		line: str(b[utLineOff : utLineOff+utLineLen]),
		user: str(b[utUserOff : utUserOff+utUserLen]),
		host: str(b[utHostOff : utHostOff+utHostLen]),
	}
	if l.tv64 {
		r.time = time.Unix(int64(ne.Uint64(b[l.tvSecOff:])), int64(ne.Uint64(b[l.tvUsecOff:]))*1000)
	} else {
		r.time = time.Unix(int64(int32(ne.Uint32(b[l.tvSecOff:]))), int64(int32(ne.Uint32(b[l.tvUsecOff:])))*1000)
	}
	copy(r.id[:], b[utIDOff:utIDOff+4])
	return r
}

// recordLogout writes the logout of the session on line (a tty name without "/dev/") that
// login(1) pid ran: in utmpFile, if it exists, the line's entry becomes DEAD_PROCESS; to
// wtmpFile, if it exists, a DEAD_PROCESS record is appended. Missing files are not created (as
// glibc does not).
func recordLogout(utmpFile, wtmpFile, line string, pid int, now time.Time) error {
	l := utmpLayoutOf(runtime.GOARCH)
	if l.unsupported {
		return fmt.Errorf("systemlogin: login records: the layout of struct utmp on %s is not known", runtime.GOARCH)
	}
	if line == "" || len(line) > utLineLen {
		return fmt.Errorf("systemlogin: login records: bad line %q", line)
	}
	rec := utmpRecord{typ: utDeadProcess, pid: int32(pid), line: line, time: now}
	uerr := clearUtmpEntry(l, utmpFile, &rec)
	werr := appendWtmp(l, wtmpFile, &rec)
	return errors.Join(uerr, werr)
}

// recordLogin writes the USER_PROCESS entry of a session to utmpFile, if it exists: in place of
// the line's entry (or its id's), else appended. Its id is the line's last 4 bytes, as
// login(1)'s ("ts/3").
func recordLogin(utmpFile, line, user, host string, pid int, now time.Time) error {
	l := utmpLayoutOf(runtime.GOARCH)
	if l.unsupported {
		return fmt.Errorf("systemlogin: login records: the layout of struct utmp on %s is not known", runtime.GOARCH)
	}
	if line == "" || len(line) > utLineLen {
		return fmt.Errorf("systemlogin: login records: bad line %q", line)
	}
	rec := utmpRecord{typ: utUserProcess, pid: int32(pid), line: line, user: user, host: host, time: now}
	copy(rec.id[:], line[max(0, len(line)-len(rec.id)):])
	f, err := openRecords(utmpFile, os.O_RDWR)
	if f == nil {
		return err
	}
	defer f.Close()
	b := make([]byte, l.size)
	off := int64(0)
	for ; ; off += l.size {
		_, err := f.ReadAt(b, off)
		if errors.Is(err, io.EOF) {
			break // appended, over a partial record at the end (a crash) if there is one
		}
		if err != nil {
			return fmt.Errorf("systemlogin: login records: %w", err)
		}
		if old := unmarshalUtmp(l, b); old.line == line || old.id == rec.id {
			break
		}
	}
	if _, err := f.WriteAt(rec.marshal(l), off); err != nil {
		return fmt.Errorf("systemlogin: login records: %w", err)
	}
	return nil
}

// clearUtmpEntry marks the live entry (USER_PROCESS or LOGIN_PROCESS) of rec.line in path as
// dead, with rec's time, keeping its id, as logout(3).
func clearUtmpEntry(l utmpLayout, path string, rec *utmpRecord) error {
	f, err := openRecords(path, os.O_RDWR)
	if f == nil {
		return err
	}
	defer f.Close()
	b := make([]byte, l.size)
	for off := int64(0); ; off += l.size {
		if _, err := f.ReadAt(b, off); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // no live entry for the line
			}
			return fmt.Errorf("systemlogin: login records: %w", err)
		}
		old := unmarshalUtmp(l, b)
		if old.line != rec.line || (old.typ != utUserProcess && old.typ != utLoginProcess) {
			continue
		}
		dead := *rec
		dead.id = old.id
		if _, err := f.WriteAt(dead.marshal(l), off); err != nil {
			return fmt.Errorf("systemlogin: login records: %w", err)
		}
		return nil
	}
}

// appendWtmp appends rec to the wtmp file at path; a partial record at its end (from a crash)
// is cut off first, as glibc's updwtmp does.
func appendWtmp(l utmpLayout, path string, rec *utmpRecord) error {
	f, err := openRecords(path, os.O_WRONLY)
	if f == nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("systemlogin: login records: %w", err)
	}
	end := fi.Size() - fi.Size()%l.size
	if end != fi.Size() {
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("systemlogin: login records: %w", err)
		}
	}
	if _, err := f.WriteAt(rec.marshal(l), end); err != nil {
		return fmt.Errorf("systemlogin: login records: %w", err)
	}
	return nil
}

// openRecords opens the login records file at path with flag and locks it (lockRecords). It
// returns a nil file, and a nil error, if the file does not exist: missing files are not
// created, as glibc does not.
func openRecords(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("systemlogin: login records: %w", err)
	}
	if err := lockRecords(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("systemlogin: login records: %s: %w", path, err)
	}
	return f, nil
}

// lockRecords takes a write lock on all of f, for as long as f is open, waiting up to
// lockTimeout. It is an open-file-description lock: it excludes the other sessions of this
// daemon as well as other processes (glibc takes a classic record lock, which conflicts with it).
func lockRecords(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	deadline := time.Now().Add(lockTimeout)
	for {
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		if err == nil {
			return nil
		}
		if (!errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES)) || time.Now().After(deadline) {
			return fmt.Errorf("locking: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
