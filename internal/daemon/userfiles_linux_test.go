package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// TestSystemUserFilesUnsafe is issue 12's lock-out: a user whose authorized_keys leads to
// /proc/kmsg (whose read as root blocks forever), another /proc file, a device or a FIFO. Each
// of several concurrent logins as that user is refused within the grace time with a log line
// saying why, and another user's login at the same time goes through (its 0600 file in its 0700
// directory is read as that user). Before the fix, the logins to /proc/kmsg never ended and held
// their admission slots.
func TestSystemUserFilesUnsafe(t *testing.T) {
	requireSystem(t)
	mallory := addUser(t, "rlt-mallory")
	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	mallory.authorize(t, 0o600) // for its key and its 0700 ~/.rlogin; the file is replaced below
	// Long enough that no login of a loaded machine reaches it, unless a read blocks.
	const grace = 10 * time.Second
	const attempts = 5
	ts := startSystem(t, func(c *Config) {
		c.LoginGraceTime = grace
		c.PerSourceMaxStartups = -1 // all the logins come from 127.0.0.1
	})
	path := filepath.Join(mallory.home, ".rlogin", "authorized_keys")
	for _, tc := range []struct {
		name string
		make func() error
		why  string // in the log line
	}{
		{"link to /proc/kmsg", func() error { return os.Symlink("/proc/kmsg", path) }, "permission denied"},
		{"link to /proc/self/status", func() error { return os.Symlink("/proc/self/status", path) }, "not on a disk file system"},
		{"link to /dev/zero", func() error { return os.Symlink("/dev/zero", path) }, "not a regular file"},
		{"fifo", func() error {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				return err
			}
			return os.Chown(path, mallory.uid, mallory.gid)
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(ts.log.String()) // this subtest's log lines come after
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, attempts)
			for range attempts {
				wg.Go(func() {
					start := time.Now()
					_, err := ts.loginAs(t, mallory.name, mallory.key)
					if d := time.Since(start); d >= grace {
						t.Errorf("the login took %v, past the grace time %v", d, grace)
					}
					errs <- err
				})
			}
			// Another user logs in while those are under way.
			r, err := ts.loginAs(t, alice.name, alice.key)
			if err != nil {
				t.Fatalf("alice's login: %v", err)
			}
			r.Send("echo ok-$(id -un)\n")
			r.Expect(`ok-rlt-alice`)
			r.Send("exit\n")
			if err := r.Wait(); err != nil {
				t.Fatalf("alice's session: %v", err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				var re *session.RefusedError
				if !errors.As(err, &re) || re.Reason != reasonDenied {
					t.Errorf("mallory's login: %v, want refusal %q", err, reasonDenied)
				}
			}
			re := regexp.MustCompile(`msg="cannot use the authorized keys file" .*user=rlt-mallory err=".*` + regexp.QuoteMeta(path) + `: ` + tc.why)
			if _, ok := ts.log.Expect(&mark, re, shortTimeout); !ok {
				t.Errorf("no log line says why: want %q", re)
			}
			if n := ts.srv.files.Outstanding(mallory.uid); n != 0 {
				t.Errorf("%d reads of mallory's files still outstanding", n)
			}
		})
	}
}
