package sessioncgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is New's error when the system offers no cgroup v2 that the caller may
// create cgroups in.
var ErrUnavailable = errors.New("sessioncgroup: no writable cgroup v2 hierarchy")

// A Cgroup is a cgroup made for one session. Its methods may be called from any goroutine,
// except Remove, which must not run concurrently with the others.
type Cgroup struct {
	dir  string // the cgroup's directory, in the cgroup2 file system
	path string // the cgroup's path as /proc/PID/cgroup shows it ("/rlogin-session-123")
	fd   int    // the directory, open: for SysProcAttr.CgroupFD
}

// New makes a new, empty cgroup under the caller's own. It returns an error matching
// ErrUnavailable when there is no cgroup2 hierarchy, or the caller may not create a cgroup in it.
func New() (*Cgroup, error) {
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	parent, rel, err := cgroupDir(own)
	if err != nil {
		return nil, err
	}
	removeStale(parent)
	dir, err := os.MkdirTemp(parent, namePrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Rmdir(dir) // best effort: it is empty
		return nil, fmt.Errorf("sessioncgroup: %w", err)
	}
	return &Cgroup{dir: dir, path: filepath.Join(rel, filepath.Base(dir)), fd: fd}, nil
}

// namePrefix starts the name of every session cgroup, followed by the pid of the process that
// made it, "-" and a random part.
const namePrefix = "rlogin-session-"

// removeStale removes the empty session cgroups in parent whose maker is gone: an rlogind killed
// with SIGKILL leaves its sessions' cgroups behind. A cgroup of a live process is left alone (it
// may be about to clone a session into it); one that still holds processes cannot be removed
// (rmdir fails with EBUSY) and stays.
func removeStale(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		maker, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(maker)
		if !ok || !ok2 || err != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // its maker runs (or a process that took its pid: the cgroup waits)
		}
		_ = unix.Rmdir(filepath.Join(parent, e.Name())) // best effort
	}
}

// ownCgroup returns the caller's cgroup v2 path ("0::/path" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: not in a cgroup v2 hierarchy", ErrUnavailable)
}

// cgroupDir returns the directory of the cgroup at path own, through the first cgroup2 mount
// (in /proc/self/mountinfo) whose root contains it, and own's path as seen from that mount's
// root, which is what /proc/PID/cgroup shows for our namespace.
func cgroupDir(own string) (dir, rel string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fs, pf := strings.Fields(post), strings.Fields(pre)
		if !ok || len(fs) < 1 || fs[0] != "cgroup2" || len(pf) < 5 {
			continue
		}
		root, mnt := unescape(pf[3]), unescape(pf[4])
		if root == "/" {
			return filepath.Join(mnt, own), own, nil
		}
		if rest, ok := strings.CutPrefix(own, root); ok && (rest == "" || rest[0] == '/') {
			return filepath.Join(mnt, rest), own, nil
		}
	}
	return "", "", fmt.Errorf("%w: no cgroup2 mount holds %s", ErrUnavailable, own)
}

// unescape undoes mountinfo's octal escapes ("\040" for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FD returns a descriptor of the cgroup's directory, for SysProcAttr.CgroupFD (with
// UseCgroupFD): a child cloned into the cgroup is in it before it runs anything. It is valid
// until Remove.
func (c *Cgroup) FD() int { return c.fd }

// Path returns the cgroup's path, as /proc/PID/cgroup shows it for its members.
func (c *Cgroup) Path() string { return c.path }

// Procs returns the processes in the cgroup now.
func (c *Cgroup) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("sessioncgroup: %w", err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Holds reports whether process pid is in the cgroup (false if it is gone).
func (c *Cgroup) Holds(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "0::"); ok {
			return p == c.path
		}
	}
	return false
}

// Signal sends sig to every process in the cgroup. Each is pinned with a pidfd and checked
// again after the pin, so a pid reused by a process outside the cgroup is never signalled.
func (c *Cgroup) Signal(sig unix.Signal) {
	pids, _ := c.Procs() // an error: the cgroup is gone, and its processes with it
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if c.Holds(pid) {
			_ = unix.PidfdSendSignal(fd, sig, nil, 0) // ESRCH: it just exited
		}
		_ = unix.Close(fd)
	}
}

// Kill kills every process in the cgroup with SIGKILL: with cgroup.kill (Linux 5.14), which
// also reaches a process being forked meanwhile; on older kernels by freezing the cgroup, so that
// nothing in it forks, and signalling its processes one by one.
func (c *Cgroup) Kill() error {
	err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sessioncgroup: kill: %w", err)
	}
	freeze := filepath.Join(c.dir, "cgroup.freeze")
	_ = os.WriteFile(freeze, []byte("1"), 0) // best effort: a frozen process still dies of SIGKILL
	c.Signal(unix.SIGKILL)
	_ = os.WriteFile(freeze, []byte("0"), 0)
	return nil
}

// Populated reports whether any process is in the cgroup (cgroup.events' "populated").
func (c *Cgroup) Populated() (bool, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("sessioncgroup: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "populated "); ok {
			return v != "0", nil
		}
	}
	return false, errors.New("sessioncgroup: cgroup.events has no populated field")
}

// WaitEmpty waits until the cgroup holds no process, or deadline has passed, and reports whether
// it is empty. It waits for the kernel's notice of a change of cgroup.events (inotify), not by
// polling; it blocks a thread while it waits.
func (c *Cgroup) WaitEmpty(deadline time.Time) bool {
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return c.pollEmpty(deadline)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, filepath.Join(c.dir, "cgroup.events"), unix.IN_MODIFY); err != nil {
		return c.pollEmpty(deadline)
	}
	var buf [4096]byte
	for {
		// Checked after the watch is in place, so a change between the two is not missed.
		if populated, err := c.Populated(); err != nil || !populated {
			return err == nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
			return c.pollEmpty(deadline)
		}
		for {
			if _, err := unix.Read(in, buf[:]); err != nil {
				break // EAGAIN: drained
			}
		}
	}
}

// pollEmpty is WaitEmpty where inotify fails: it checks every few milliseconds.
func (c *Cgroup) pollEmpty(deadline time.Time) bool {
	for {
		if populated, err := c.Populated(); err != nil || !populated {
			return err == nil
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // no notice to wait for: a short, bounded poll
	}
}

// Remove closes the cgroup's descriptor and removes the cgroup, which must be empty by now.
// Later calls do nothing and return nil.
func (c *Cgroup) Remove() error {
	if c.fd < 0 {
		return nil
	}
	_ = unix.Close(c.fd)
	c.fd = -1
	if err := unix.Rmdir(c.dir); err != nil {
		return fmt.Errorf("sessioncgroup: remove %s: %w", c.dir, err)
	}
	return nil
}

// String returns the cgroup's path.
func (c *Cgroup) String() string { return c.path }

// Available reports whether New succeeds here, by making a cgroup and removing it; err is an
// error other than ErrUnavailable. Tests use it to know which guarantees to check.
func Available() (ok bool, err error) {
	cg, err := New()
	if errors.Is(err, ErrUnavailable) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, cg.Remove()
}
