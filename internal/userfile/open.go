package userfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Errors of Open, wrapped in an *fs.PathError naming the file.
var (
	// ErrNotRegular is the error for a FIFO, socket, device, directory or other non-regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrFileSystem is the error for a file on a file system that is not in the list of
	// disk-backed ones (procfs, sysfs, debugfs, FUSE, ...).
	ErrFileSystem = errors.New("not on a disk file system")
	// ErrTooLarge is the error of ReadFile for a file larger than its limit.
	ErrTooLarge = errors.New("larger than the limit")
)

// ReadFile reads the file at path, opened with Open, if it holds at most limit bytes. It returns
// the contents and what fstat(2) said of the file opened, for the caller's ownership checks, or
// an error: Open's, or an *fs.PathError wrapping ErrTooLarge. Like Open, it does not bound the
// time the file system takes.
func ReadFile(path string, limit int64) ([]byte, fs.FileInfo, error) {
	return readFile(path, limit, 0)
}

// ReadFileNoFollow is ReadFile for a file that must not be a symbolic link itself, as ruserok(3)
// wants .rhosts: a link gives an error (ELOOP) instead. Links in the directories leading to it
// are followed.
func ReadFileNoFollow(path string, limit int64) ([]byte, fs.FileInfo, error) {
	return readFile(path, limit, syscall.O_NOFOLLOW)
}

func readFile(path string, limit int64, flag int) ([]byte, fs.FileInfo, error) {
	f, err := open(path, flag)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	tooLarge := &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)}
	if fi.Size() > limit {
		return nil, nil, tooLarge
	}
	// The size may change under us: read one byte past the limit to see.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, tooLarge
	}
	return data, fi, nil
}

// Open opens path for reading as the calling thread's credentials allow, without blocking on a
// FIFO or making a terminal the controlling one, following symbolic links, and returns the file
// only if it is a regular file on a disk-backed file system; otherwise it returns an
// *fs.PathError wrapping ErrNotRegular or ErrFileSystem (or the open's own error, matching
// fs.ErrNotExist for a missing file). Open does not bound the time the file system takes: call
// it from Load for that.
func Open(path string) (*os.File, error) {
	return open(path, 0)
}

// open is Open with more flags.
func open(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC|flag, 0)
	if err != nil {
		return nil, err
	}
	if err := checkOpened(f); err != nil {
		_ = f.Close() // best effort: refused, never read
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, nil
}

// checkOpened checks what f is, on the descriptor, so a rename or symbolic link swapped in since
// the open changes nothing.
func checkOpened(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w (%s)", ErrNotRegular, kind(fi.Mode()))
	}
	return checkFileSystem(f)
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}
