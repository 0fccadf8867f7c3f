package userfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// diskFileSystems are the file systems Open reads from, by statfs(2) magic number: local
// disk-backed ones, tmpfs and overlayfs (containers), and the network ones home directories live
// on (NFS, SMB/CIFS, Ceph), whose stalls Load's deadline bounds. Left out on purpose: procfs,
// sysfs, debugfs, securityfs, tracefs and every other pseudo file system (their regular files
// block, or are not files at all), and FUSE and 9p, whose server a user may run.
var diskFileSystems = map[int64]string{
	unix.EXT4_SUPER_MAGIC:      "ext2/3/4",
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	0x2fc12fc1:                 "zfs", // not in linux/magic.h: ZFS is out of tree
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	unix.BCACHEFS_SUPER_MAGIC:  "bcachefs",
	unix.REISERFS_SUPER_MAGIC:  "reiserfs",
	unix.MSDOS_SUPER_MAGIC:     "vfat",
	unix.EXFAT_SUPER_MAGIC:     "exfat",
	unix.SQUASHFS_MAGIC:        "squashfs",
	unix.ECRYPTFS_SUPER_MAGIC:  "ecryptfs",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlayfs",
	unix.NFS_SUPER_MAGIC:       "nfs",
	unix.SMB2_SUPER_MAGIC:      "smb2",
	unix.CIFS_SUPER_MAGIC:      "cifs",
	unix.CEPH_SUPER_MAGIC:      "ceph",
}

// checkFileSystem refuses f unless its file system is one of diskFileSystems.
func checkFileSystem(f *os.File) error {
	rc, err := f.SyscallConn() // not f.Fd(), which would make the descriptor blocking
	if err != nil {
		return err
	}
	var st unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &st) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("fstatfs: %w", serr)
	}
	if _, ok := diskFileSystems[int64(st.Type)]; !ok {
		return fmt.Errorf("%w (file system magic %#x)", ErrFileSystem, uint64(st.Type))
	}
	return nil
}
