package userfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watchdog fails the test if it has not ended within d: a FIFO or a /proc file that blocked
// would otherwise hang the run.
func watchdog(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic("watchdog: " + t.Name() + " still running after " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

func TestReadFile(t *testing.T) {
	watchdog(t, 20*time.Second)
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(dir, "large")
	if err := os.WriteFile(large, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	targets := []struct {
		name, path string
		want       error // nil: read
	}{
		{"regular", regular, nil},
		{"oversize", large, ErrTooLarge},
		{"fifo", fifo, ErrNotRegular},
		{"directory", dir, ErrNotRegular},
		{"dev-null", "/dev/null", ErrNotRegular},
		{"proc-file", "/proc/self/status", ErrFileSystem},
		{"sys-file", "/sys/kernel/mm/transparent_hugepage/enabled", ErrFileSystem},
		{"missing", filepath.Join(dir, "missing"), fs.ErrNotExist},
	}
	if os.Geteuid() == 0 {
		// Root may open /proc/kmsg, whose read blocks: it must be refused unread.
		targets = append(targets, struct {
			name, path string
			want       error
		}{"proc-kmsg", "/proc/kmsg", ErrFileSystem})
	}
	for _, tc := range targets {
		if _, err := os.Stat(tc.path); err != nil && tc.want != fs.ErrNotExist {
			t.Logf("%s: %v; skipped", tc.name, err)
			continue
		}
		link := filepath.Join(dir, "link-to-"+tc.name)
		if err := os.Symlink(tc.path, link); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{tc.path, link} {
			name := tc.name
			if path == link {
				name += "-symlink"
			}
			t.Run(name, func(t *testing.T) {
				data, fi, err := ReadFile(path, 100)
				if tc.want == nil {
					if err != nil || string(data) != "hello\n" || !fi.Mode().IsRegular() {
						t.Fatalf("ReadFile(%s) = %q, %v, %v; want hello", path, data, fi, err)
					}
					return
				}
				var pe *fs.PathError
				if !errors.Is(err, tc.want) || !errors.As(err, &pe) || data != nil {
					t.Fatalf("ReadFile(%s) = %q, %v; want an *fs.PathError wrapping %v", path, data, err, tc.want)
				}
			})
		}
	}
}

func TestReadFileNoFollow(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	if data, _, err := ReadFileNoFollow(regular, 100); err != nil || string(data) != "hello\n" {
		t.Errorf("ReadFileNoFollow(regular) = %q, %v", data, err)
	}
	if data, _, err := ReadFileNoFollow(link, 100); !errors.Is(err, syscall.ELOOP) || data != nil {
		t.Errorf("ReadFileNoFollow(link) = %q, %v; want ELOOP", data, err)
	}
}

func TestLoadDeadlineAndBound(t *testing.T) {
	watchdog(t, 20*time.Second)
	r := &Reader{MaxPerUser: 2}
	const uid = 0 // or the daemon's own: no credentials to switch
	release := make(chan struct{})
	stuck := func() (int, error) { <-release; return 1, nil }
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := Load(ctx, r, uid, stuck)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stuck load %d: %v, want the deadline's error", i, err)
		}
	}
	if n := r.Outstanding(uid); n != 2 {
		t.Fatalf("Outstanding = %d, want 2", n)
	}
	// A third is refused at once, without waiting for its deadline.
	start := time.Now()
	if _, err := Load(context.Background(), r, uid, stuck); !errors.Is(err, ErrBusy) {
		t.Fatalf("third load: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ErrBusy took %v", d)
	}
	// Another user is not held up by this one.
	if v, err := Load(context.Background(), r, uid+1, func() (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("other user's load = %d, %v", v, err)
	}
	close(release)
	for r.Outstanding(uid) != 0 { // the stuck loads return and are released; the watchdog bounds this
		time.Sleep(time.Millisecond)
	}
	if v, err := Load(context.Background(), r, uid, func() (int, error) { return 3, nil }); err != nil || v != 3 {
		t.Fatalf("load after release = %d, %v", v, err)
	}
	// A Load whose ctx has ended does not start.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, r, uid, func() (int, error) { t.Error("load ran"); return 0, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

// TestLoadAsUser checks, as root, that Load reads with the user's rights and gives the thread
// root's back: the user reads its own 0600 file in its 0700 directory, not root's 0600 one, nor
// /proc/kmsg; root's reads afterwards still work.
func TestLoadAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user's credentials")
	}
	watchdog(t, 20*time.Second)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	top, err := os.MkdirTemp("", "userfile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(top) })
	if err := os.Chmod(top, 0o711); err != nil { // the user may pass, not list
		t.Fatal(err)
	}
	own := filepath.Join(top, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	ownFile := filepath.Join(own, "file")
	if err := os.WriteFile(ownFile, []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{own, ownFile} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	rootFile := filepath.Join(top, "root")
	if err := os.WriteFile(rootFile, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var r Reader
	read := func(uid int, path string) (string, error) {
		data, err := Load(context.Background(), &r, uid, func() ([]byte, error) {
			data, _, err := ReadFile(path, 100)
			return data, err
		})
		return string(data), err
	}
	for range 20 { // many loads: the threads they ran on must all be root's again
		if got, err := read(uid, ownFile); err != nil || got != "mine\n" {
			t.Fatalf("as the user, own file: %q, %v", got, err)
		}
		if _, err := read(uid, rootFile); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("as the user, root's file: %v, want permission denied", err)
		}
		if got, err := os.ReadFile(rootFile); err != nil || got == nil {
			t.Fatalf("as root after the user's loads: %q, %v", got, err)
		}
	}
	if _, err := os.Stat("/proc/kmsg"); err == nil {
		if _, err := read(uid, "/proc/kmsg"); err == nil {
			t.Fatal("as the user, /proc/kmsg was read")
		}
	}
	if got, err := read(0, rootFile); err != nil || got != "root's\n" {
		t.Fatalf("as root: %q, %v", got, err)
	}
}
