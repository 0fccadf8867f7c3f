package logintest

import (
	"crypto/ed25519"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
)

// A User is a local user made for a test (System mode), with a key in its
// ~/.rlogin/authorized_keys.
type User struct {
	Name, Home string
	UID, GID   int
	Key        ed25519.PrivateKey // listed in ~/.rlogin/authorized_keys
}

// RequireRoot skips the test unless it runs as root: making users needs root (CI runs such
// tests as root; as another user they skip, never fail).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("this test needs root: it adds users and runs login(1) (CI runs it as root)")
	}
}

// AddUser makes the user name, which must start with "rlt-" (a leftover of a crashed run is
// removed first), with /bin/bash as its shell, a home in /home and a fresh key authorized in
// ~/.rlogin/authorized_keys (mode 0600, owned by the user); the test's cleanup removes it all,
// once the user's processes have ended.
func AddUser(t testing.TB, name string) *User {
	t.Helper()
	RequireRoot(t)
	if !strings.HasPrefix(name, "rlt-") {
		t.Fatalf("test user %q must start with rlt-", name)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Logf("removing the leftover user %s", name)
		userCmd(t, "userdel", "-r", "-f", name)
	}
	home := filepath.Join("/home", name)
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	userCmd(t, "useradd", "-m", "-d", home, "-s", "/bin/bash", "-c", "rlogind test", name)
	t.Cleanup(func() {
		termtest.WaitFor(t, Timeout, "the processes of "+name+" to end", func() bool { return len(processesOf(name)) == 0 })
		userCmd(t, "userdel", "-r", "-f", name)
	})
	pw, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	u := &User{Name: name, Home: pw.HomeDir}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(pw.Gid)
	_, u.Key, err = ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.Home, ".rlogin")
	path := filepath.Join(dir, "authorized_keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, keys.MarshalAuthorizedKey(u.Key.Public().(ed25519.PublicKey), name), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path} {
		if err := os.Chown(p, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// userCmd runs useradd or userdel, trying again for a while if it fails: tests of other
// packages change the user database at the same time, and these tools give up when they find
// it locked. For userdel, a user already gone is success.
func userCmd(t testing.TB, name string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		out, err := exec.Command(name, args...).CombinedOutput()
		var ee *exec.ExitError
		if err == nil || name == "userdel" && errors.As(err, &ee) && ee.ExitCode() == 6 { // 6: no such user
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		time.Sleep(100 * time.Millisecond) // the lock holder gives no sign when it is done
	}
}

// processesOf lists the live processes whose real uid is the user name's.
func processesOf(name string) []int {
	u, err := user.Lookup(name)
	if err != nil {
		return nil
	}
	var pids []int
	eachProcess(func(pid int, dir string) {
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			return
		}
		live, mine := true, false
		for line := range strings.Lines(string(status)) {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "State:":
				live = f[1] != "Z" && f[1] != "X"
			case len(f) > 1 && f[0] == "Uid:":
				mine = f[1] == u.Uid
			}
		}
		if live && mine {
			pids = append(pids, pid)
		}
	})
	return pids
}

// SetPassword gives the test user u the password password (chpasswd), for tests of password
// logins; userdel removes it with the user. Like userCmd, it tries again while other tests hold
// the user database's lock.
func SetPassword(t testing.TB, u *User, password string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		cmd := exec.Command("chpasswd")
		cmd.Stdin = strings.NewReader(u.Name + ":" + password + "\n")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chpasswd for %s: %v\n%s", u.Name, err, out)
		}
		time.Sleep(100 * time.Millisecond) // the lock holder gives no sign when it is done
	}
}
