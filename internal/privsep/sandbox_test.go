package privsep

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"

	"github.com/rlogin-go/rlogin/transport"
)

// testUIDs is the dynamic uid range of these tests: above the default one, so a test never
// takes a uid of a running rlogind's net child.
func testUIDs() UIDRange { return UIDRange{First: 98304, Count: 16} }

// childBinary returns a copy of the test binary that any uid may run (go test's own is in a
// directory only root may enter).
func childBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "privsep-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "privsep.test")
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can start a net child as a dynamic uid")
	}
}

// childCmd returns the command of a scenario with a watchdog: the child is killed when the
// test's time for it runs out.
func childCmd(t *testing.T, cmd *exec.Cmd, scenario string, env ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := exec.CommandContext(ctx, cmd.Path)
	c.Dir, c.ExtraFiles, c.SysProcAttr = cmd.Dir, cmd.ExtraFiles, cmd.SysProcAttr
	c.Env = append([]string{childEnv + "=" + scenario}, env...)
	return c
}

// runReport runs cmd and decodes its report.
func runReport(t *testing.T, cmd *exec.Cmd) map[string]string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	report := map[string]string{}
	if jerr := json.Unmarshal(stdout.Bytes(), &report); jerr != nil {
		t.Fatalf("child: %v, output %q, stderr %q", err, stdout.String(), stderr.String())
	}
	if err != nil || report["error"] != "" {
		t.Fatalf("child: %v: %s (stderr %q)", err, report["error"], stderr.String())
	}
	return report
}

func checkReport(t *testing.T, report map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if report[k] != v {
			t.Errorf("%s = %q, want %q", k, report[k], v)
		}
	}
}

// confinedWant is what every confined child reports, whatever its uid.
func confinedWant() map[string]string {
	return map[string]string{
		"NoNewPrivs": "1", "Seccomp": "2", "dumpable": "0 ok",
		"rlimit_nofile": strconv.Itoa(NetChildMaxFiles) + "/" + strconv.Itoa(NetChildMaxFiles),
		"rlimit_fsize":  "0/0", "rlimit_core": "0/0", "cwd": "/",
		"execve": "EPERM", "socket": "EPERM", "setuid": "EPERM", "set_dumpable": "EPERM",
		"create": "EPERM", "mkdir": "EPERM", "fork": "EPERM",
	}
}

// TestConfine confines a child as the user running the test (no uid change): any user.
func TestConfine(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	report := runReport(t, childCmd(t, exec.Command(self), "confine"))
	checkReport(t, report, confinedWant())
	if n, _ := strconv.Atoi(report["threads"]); n < 4 {
		t.Errorf("the child had %s threads, want 4 or more (the test starts 3 before Confine)", report["threads"])
	}
	t.Logf("confined child: %v", report)
}

// leasePair leases a uid of testUIDs from uidDir and makes a Pair for a net child; the lease
// is released and both ends closed at the test's end.
func leasePair(t *testing.T, uidDir string) (lease *UIDLease, mine, theirs *os.File) {
	t.Helper()
	lease, err := LeaseUID(uidDir, testUIDs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lease.Release() })
	mine, theirs, err = Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Close(); theirs.Close() }) // closing twice is harmless
	return lease, mine, theirs
}

func TestNetCommandConfines(t *testing.T) {
	needRoot(t)
	exe := childBinary(t)
	lease, _, theirs := leasePair(t, t.TempDir())
	report := runReport(t, childCmd(t, NetCommand(exe, lease, theirs), "confine"))
	want := confinedWant()
	uid := strconv.Itoa(int(lease.UID))
	want["Uid"] = strings.Repeat(uid+" ", 3) + uid
	want["Gid"] = want["Uid"]
	want["Groups"], want["CapEff"], want["CapPrm"] = "", "0000000000000000", "0000000000000000"
	checkReport(t, report, want)
}

// startWaiter starts a confined net child that waits for its Channel to close; it returns the
// child's pid and lease. The child ends at the test's end.
func startWaiter(t *testing.T, exe, uidDir string) (int, *UIDLease) {
	t.Helper()
	lease, mine, theirs := leasePair(t, uidDir)
	cmd := childCmd(t, NetCommand(exe, lease, theirs), "wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		mine.Close() // the child's Receive ends
		if err := cmd.Wait(); err != nil {
			t.Errorf("waiting child: %v", err)
		}
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("waiting child said %q, %v", line, err)
	}
	return cmd.Process.Pid, lease
}

// TestNetChildrenApart: a net child cannot trace, read or signal another connection's.
func TestNetChildrenApart(t *testing.T) {
	needRoot(t)
	exe, dir := childBinary(t), t.TempDir()
	target, targetLease := startWaiter(t, exe, dir)
	lease, _, theirs := leasePair(t, dir)
	if lease.UID == targetLease.UID {
		t.Fatalf("two leases of uid %d", lease.UID)
	}
	report := runReport(t, childCmd(t, NetCommand(exe, lease, theirs), "probe", childTargetEnv+"="+strconv.Itoa(target)))
	checkReport(t, report, map[string]string{
		"uid": strconv.Itoa(int(lease.UID)), "ptrace": "EPERM", "process_vm_readv": "EPERM",
		"kill": "EPERM", "environ": "EACCES",
	})
}

// TestNetChildDiesWithMonitor: SIGKILL to a monitor kills its net child (Pdeathsig).
func TestNetChildDiesWithMonitor(t *testing.T) {
	needRoot(t)
	exe := childBinary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	monitor := childCmd(t, exec.Command(self), "monitor", childUIDDirEnv+"="+t.TempDir(),
		childExeEnv+"="+exe, childFirstEnv+"="+strconv.Itoa(int(testUIDs().First)))
	out, err := monitor.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	monitor.Stderr = &stderr
	if err := monitor.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	child, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		monitor.Process.Kill()
		monitor.Wait()
		t.Fatalf("monitor said %q, %v (stderr %q)", line, err, stderr.String())
	}
	pidfd, err := unix.PidfdOpen(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	monitor.Process.Kill()
	monitor.Wait()
	// The pidfd becomes readable when the child has exited.
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10_000)
	if err != nil || n != 1 {
		t.Fatalf("net child %d still runs 10 s after its monitor was killed (%v)", child, err)
	}
}

// TestNetChildHandshake: a TLS 1.3 handshake with the host key's signer works inside the
// sandbox, the monitor's side in this process.
func TestNetChildHandshake(t *testing.T) {
	needRoot(t)
	exe := childBinary(t)
	lease, mine, theirs := leasePair(t, t.TempDir())
	monitorCh, err := NewFileChannel(mine, MonitorSide)
	if err != nil {
		t.Fatal(err)
	}
	defer monitorCh.Close()
	watchdog(t, monitorCh)
	// The child's end goes to it as a file; this process keeps the client's.
	childEnd, clientConn := streamPair(t)
	childConn, err := childEnd.(*net.UnixConn).File()
	childEnd.Close()
	if err != nil {
		t.Fatal(err)
	}

	hostKey := testKey()
	holder, err := NewHostKeyHolder(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, NetCommand(exe, lease, theirs, childConn), "handshake",
		childPubEnv+"="+hex.EncodeToString(hostKey.Public().(ed25519.PublicKey)))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	childConn.Close()
	monitorDone := make(chan result[int], 1)
	go func() {
		n, err := serveSignatures(monitorCh, holder)
		monitorDone <- result[int]{n, err}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Client(ctx, clientConn, &transport.SecureConfig{Key: ed25519.NewKeyFromSeed(make([]byte, 32)),
		VerifyPeer: func(k ed25519.PublicKey) error {
			if !k.Equal(hostKey.Public()) {
				return errors.New("not the host key")
			}
			return nil
		}})
	var got [4]byte
	if err == nil {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err = c.Write([]byte("ping")); err == nil {
			_, err = io.ReadFull(c, got[:])
		}
		c.Close()
	}
	werr := cmd.Wait()
	monitorCh.Close()
	mr := <-monitorDone
	if err != nil || werr != nil || string(got[:]) != "pong" {
		t.Fatalf("client: %v, read %q; child: %v, %s, stderr %q", err, got, werr, stdout.String(), stderr.String())
	}
	if mr.v != 2 || mr.err != nil {
		t.Errorf("monitor signed %d, ended with %v; want 2 and the child's close", mr.v, mr.err)
	}
}

func TestLeaseUID(t *testing.T) {
	dir := t.TempDir()
	r := UIDRange{First: 98304, Count: 3}
	var leases []*UIDLease
	seen := map[uint32]bool{}
	for range 3 {
		l, err := LeaseUID(dir, r)
		if err != nil {
			t.Fatal(err)
		}
		if seen[l.UID] || l.UID < r.First || l.UID >= r.First+r.Count {
			t.Fatalf("leased uid %d twice or outside %v", l.UID, r)
		}
		seen[l.UID] = true
		leases = append(leases, l)
	}
	if _, err := LeaseUID(dir, r); !errors.Is(err, ErrNoUID) {
		t.Fatalf("a fourth lease of three uids: %v", err)
	}
	if err := leases[1].Release(); err != nil {
		t.Fatal(err)
	}
	l, err := LeaseUID(dir, r)
	if err != nil || l.UID != leases[1].UID {
		t.Fatalf("after a release: %v, %v; want uid %d", l, err, leases[1].UID)
	}
	for _, l := range append(leases, l) {
		if l != leases[1] {
			l.Release()
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d lock files left after every release", len(ents))
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := LeaseUID(dir, r); err == nil {
		t.Error("leased a uid from a directory anyone may write")
	}
}

// seccompData is the input of a seccomp filter (struct seccomp_data) as x/net/bpf's VM loads
// it: the VM reads words big-endian, so each word is written so, and a 64-bit argument's low
// and high words where the filter of a little-endian machine looks for them.
func seccompData(nr int, auditArch uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(0, uint32(nr))
	put(4, auditArch)
	for i, a := range args {
		put(16+8*i, uint32(a))
		put(16+8*i+4, uint32(a>>32))
	}
	return b
}

// TestNetChildPolicies runs Confine's filters in a BPF interpreter: named system calls denied,
// the rest of the native ABI allowed, other ABIs (i386's execve, which a deny list would let
// through) refused, arguments looked into where they decide.
func TestNetChildPolicies(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the argument layout of seccompData is a little-endian machine's")
	}
	policies, err := netChildPolicies()
	if err != nil {
		t.Fatal(err)
	}
	var vms []*bpf.VM
	for _, p := range policies {
		insts, err := p.Assemble()
		if err != nil {
			t.Fatal(err)
		}
		vm, err := bpf.NewVM(insts)
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	// run returns what the kernel would do: the first answer that is not "allow" (the
	// filters' refusals do not overlap).
	run := func(auditArch uint32, nr int, args ...uint64) string {
		t.Helper()
		for _, vm := range vms {
			v, err := vm.Run(seccompData(nr, auditArch, args...))
			if err != nil {
				t.Fatal(err)
			}
			switch ret := uint32(v); {
			case ret == uint32(seccomp.ActionAllow):
				continue
			case ret&0xffff0000 == uint32(seccomp.ActionErrno):
				return unix.ErrnoName(unix.Errno(ret & 0xffff))
			default:
				return fmt.Sprintf("%#x", ret)
			}
		}
		return "allow"
	}
	native := uint32(info.ID)
	for _, tc := range []struct {
		name string
		args []uint64
		want string
	}{
		{"read", nil, "allow"}, {"write", nil, "allow"}, {"futex", nil, "allow"}, {"mmap", nil, "allow"},
		{"epoll_pwait", nil, "allow"}, {"getrandom", nil, "allow"}, {"recvmsg", nil, "allow"},
		{"sendmsg", nil, "allow"}, {"ioctl", nil, "allow"}, {"exit_group", nil, "allow"},
		{"execve", nil, "EPERM"}, {"execveat", nil, "EPERM"}, {"ptrace", nil, "EPERM"},
		{"process_vm_readv", nil, "EPERM"}, {"mount", nil, "EPERM"}, {"chroot", nil, "EPERM"},
		{"setuid", nil, "EPERM"}, {"setresuid", nil, "EPERM"}, {"kexec_load", nil, "EPERM"},
		{"bpf", nil, "EPERM"}, {"init_module", nil, "EPERM"}, {"finit_module", nil, "EPERM"},
		{"delete_module", nil, "EPERM"}, {"reboot", nil, "EPERM"}, {"swapon", nil, "EPERM"},
		{"keyctl", nil, "EPERM"}, {"unshare", nil, "EPERM"}, {"socket", nil, "EPERM"},
		{"io_uring_setup", nil, "EPERM"}, {"fork", nil, "EPERM"}, {"mkdirat", nil, "EPERM"},
		{"clone3", nil, "ENOSYS"}, {"openat2", nil, "ENOSYS"},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD}, "allow"},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, "EPERM"},
		{"clone", []uint64{unix.CLONE_VFORK | unix.CLONE_VM | uint64(unix.SIGCHLD)}, "EPERM"},
		{"prctl", []uint64{unix.PR_SET_DUMPABLE, 1}, "EPERM"},
		{"prctl", []uint64{unix.PR_GET_DUMPABLE}, "allow"},
		{"prctl", []uint64{unix.PR_SET_NAME}, "allow"},
		{"openat", []uint64{0, 0, unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY}, "allow"},
		{"openat", []uint64{0, 0, unix.O_WRONLY | unix.O_CREAT | unix.O_CLOEXEC}, "EPERM"},
		{"openat", []uint64{0, 0, unix.O_RDWR | unix.O_TMPFILE}, "EPERM"},
		{"open", []uint64{0, unix.O_RDONLY}, "allow"},
		{"open", []uint64{0, unix.O_CREAT | unix.O_EXCL}, "EPERM"},
	} {
		nr, ok := info.SyscallNames[tc.name]
		if !ok {
			continue // not on this architecture
		}
		if got := run(native, nr, tc.args...); got != tc.want {
			t.Errorf("%s%x: %s, want %s", tc.name, tc.args, got, tc.want)
		}
	}
	// Every native system call not named is allowed (with arguments of zero, which the
	// argument rules let through: clone aside, which needs CLONE_THREAD).
	denied := map[string]bool{"clone": true, "clone3": true, "openat2": true}
	for _, n := range deniedSyscalls() {
		denied[n] = true
	}
	for name, nr := range info.SyscallNames {
		if !denied[name] && run(native, nr) != "allow" {
			t.Errorf("%s is refused", name)
		}
	}
	if i386, err := arch.GetInfo("386"); err == nil && info.Name == "x86_64" {
		if got := run(uint32(i386.ID), i386.SyscallNames["execve"]); got != "EPERM" {
			t.Errorf("i386 execve: %s, want EPERM", got)
		}
	}
	if got := run(native, 1000); got != "EPERM" {
		t.Errorf("an unknown system call number: %s, want EPERM", got)
	}
}
