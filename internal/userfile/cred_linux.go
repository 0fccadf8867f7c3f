package userfile

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// credentials are a thread's file-system credentials.
type credentials struct {
	uid, gid int
	groups   []int
}

// asUser runs fn with uid's file-system credentials on a locked thread when the process is root
// and uid is not; otherwise it just runs fn.
func asUser(uid int, fn func() error) error {
	if os.Geteuid() != 0 || uid == 0 {
		return fn()
	}
	to, err := lookup(uid)
	if err != nil {
		return err
	}
	groups, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("userfile: %w", err)
	}
	saved := credentials{uid: 0, gid: os.Getegid(), groups: groups}
	runtime.LockOSThread()
	if err := setThread(to); err != nil {
		if rerr := setThread(saved); rerr != nil {
			return fmt.Errorf("userfile: %w; restoring: %w", err, rerr) // thread stays locked: it ends with this goroutine
		}
		runtime.UnlockOSThread()
		return fmt.Errorf("userfile: %w", err)
	}
	ferr := fn()
	if err := setThread(saved); err != nil {
		return fmt.Errorf("userfile: restoring the daemon's credentials: %w", err) // as above
	}
	runtime.UnlockOSThread()
	return ferr
}

// lookup returns uid's primary and supplementary groups.
func lookup(uid int) (credentials, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return credentials{}, fmt.Errorf("userfile: %w", err)
	}
	c := credentials{uid: uid}
	if c.gid, err = strconv.Atoi(u.Gid); err != nil {
		return credentials{}, fmt.Errorf("userfile: group id %q of uid %d: %w", u.Gid, uid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return credentials{}, fmt.Errorf("userfile: groups of uid %d: %w", uid, err)
	}
	for _, id := range ids {
		g, err := strconv.Atoi(id)
		if err != nil {
			return credentials{}, fmt.Errorf("userfile: group id %q of uid %d: %w", id, uid, err)
		}
		c.groups = append(c.groups, g)
	}
	return c, nil
}

// setThread sets the calling thread's supplementary groups, fsgid and fsuid to c, in the order
// that keeps the right to do so (setting fsuid to non-root drops CAP_DAC_OVERRIDE and the other
// file capabilities; back to 0 restores them), and checks that each took: setfsuid(2) and
// setfsgid(2) report no failure but the previous value.
func setThread(c credentials) error {
	if c.uid == 0 { // back to root: the file capabilities first
		if err := setFSUID(c.uid); err != nil {
			return err
		}
	}
	if err := setThreadGroups(c.groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if _, err := unix.SetfsgidRetGid(c.gid); err != nil {
		return fmt.Errorf("setfsgid: %w", err)
	}
	if got, _ := unix.SetfsgidRetGid(-1); got != c.gid {
		return fmt.Errorf("setfsgid(%d) left fsgid %d", c.gid, got)
	}
	if c.uid != 0 {
		return setFSUID(c.uid)
	}
	return nil
}

func setFSUID(uid int) error {
	if _, err := unix.SetfsuidRetUid(uid); err != nil {
		return fmt.Errorf("setfsuid: %w", err)
	}
	if got, _ := unix.SetfsuidRetUid(-1); got != uid {
		return fmt.Errorf("setfsuid(%d) left fsuid %d", uid, got)
	}
	return nil
}
