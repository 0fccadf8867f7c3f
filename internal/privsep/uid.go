package privsep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// A UIDRange is the dynamic uids (and gids, the same numbers) net children run as: Count
// numbers from First. No account, subordinate uid range (/etc/subuid) or other service may use
// them: a process of such a uid could signal a net child, and a net child it.
type UIDRange struct {
	First, Count uint32
}

// DefaultUIDRange is 65536-98303: above the 16-bit uids of accounts and systemd's DynamicUser
// range (61184-65519), below useradd's first subordinate uid (SUB_UID_MIN, 100000), in the
// range systemd's "UIDs and GIDs" document leaves unused (65536-524287).
func DefaultUIDRange() UIDRange { return UIDRange{First: 65536, Count: 32768} }

// DefaultUIDDir is where LeaseUID keeps its lock files: on a tmpfs, so a reboot forgets them.
const DefaultUIDDir = "/run/rlogind/dynamic-uid"

// ErrNoUID is returned by LeaseUID when every uid of the range is leased.
var ErrNoUID = errors.New("privsep: every dynamic uid is in use")

// A UIDLease is one dynamic uid, held by one monitor until Release or its exit: a lock on
// the file dir/UID (flock, so the kernel drops it when the monitor dies, however it dies).
// Monitors are processes of their own and outlive a restart of the listener, so the leases
// live in the file system, where every monitor and every listener sees them, as systemd's
// DynamicUser= does.
type UIDLease struct {
	UID  uint32
	file *os.File
}

// LeaseUID leases a uid of r that no other monitor holds, trying them from a random one on,
// so that a uid just released is seldom the next one leased: its net child, killed with its
// monitor, is gone by the time its uid comes round again. dir is made (0700) if it does not
// exist; it must be root's (the caller's) and writable by no one else.
func LeaseUID(dir string, r UIDRange) (*UIDLease, error) {
	if r.Count == 0 || r.First == 0 || uint64(r.First)+uint64(r.Count) > 1<<31 {
		return nil, fmt.Errorf("privsep: bad dynamic uid range %d+%d", r.First, r.Count)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("privsep: dynamic uids: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return nil, fmt.Errorf("privsep: dynamic uids: %w", os.NewSyscallError("lstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("privsep: dynamic uids: %s is not a directory only its owner (uid %d) can write", dir, os.Geteuid())
	}
	start := rand.Uint32N(r.Count)
	for i := range r.Count {
		uid := r.First + (start+i)%r.Count
		if accountUses(uid) {
			continue // an account's (LDAP, SSSD...): a net child must never be someone
		}
		f, err := lockUID(filepath.Join(dir, strconv.FormatUint(uint64(uid), 10)))
		if err != nil {
			return nil, fmt.Errorf("privsep: dynamic uid %d: %w", uid, err)
		}
		if f != nil {
			return &UIDLease{UID: uid, file: f}, nil
		}
	}
	return nil, ErrNoUID
}

// accountUses reports whether the user or group database knows uid (as a user or group id), as
// systemd checks before it hands out a dynamic uid.
func accountUses(uid uint32) bool {
	id := strconv.FormatUint(uint64(uid), 10)
	if _, err := user.LookupId(id); err == nil {
		return true
	}
	_, err := user.LookupGroupId(id)
	return err == nil
}

// lockUID takes the lock of one uid's file: the file, or nil if another monitor holds it.
func lockUID(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, os.NewSyscallError("flock", err)
		}
		// Release unlinks the file before it unlocks: a lock on a file no longer at path is
		// a lock on nothing, so open the path again.
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			_ = f.Close()
			return nil, os.NewSyscallError("fstat", err)
		}
		if err := unix.Lstat(path, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return f, nil
		}
		_ = f.Close()
	}
}

// Release gives the uid back. Call it after the net child has exited (Wait), so that no
// process of the uid is left when another monitor leases it.
func (l *UIDLease) Release() error {
	rmErr := os.Remove(l.file.Name())
	if err := errors.Join(rmErr, l.file.Close()); err != nil {
		return fmt.Errorf("privsep: release uid %d: %w", l.UID, err)
	}
	return nil
}
