package privsep

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/transport"
)

// The environment of a test binary re-executed as a net child: childEnv names its scenario
// (runChild), the others what the scenario needs.
const (
	childEnv       = "PRIVSEP_TEST_CHILD"
	childPubEnv    = "PRIVSEP_TEST_HOSTKEY"   // hex of the host's public key (handshake)
	childTargetEnv = "PRIVSEP_TEST_TARGET"    // a pid to try to trace and signal (probe)
	childUIDDirEnv = "PRIVSEP_TEST_UID_DIR"   // where the monitor scenario leases its child's uid
	childExeEnv    = "PRIVSEP_TEST_EXE"       // the binary the monitor scenario starts
	childFirstEnv  = "PRIVSEP_TEST_FIRST_UID" // the first uid of the monitor scenario's range
)

// runChild runs a scenario in a re-executed test binary and returns its exit status. The
// scenarios write a JSON report (map of string to string) on standard output.
func runChild(scenario string) int {
	report := map[string]string{}
	var err error
	switch scenario {
	case "confine":
		err = childConfine(report)
	case "handshake":
		err = childHandshake(report)
	case "probe":
		err = childProbe(report)
	case "wait":
		err = childWait()
	case "monitor":
		err = childMonitor()
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		report["error"] = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(report)
	if err != nil {
		return 1
	}
	return 0
}

// errnoText is the errno of err ("EPERM"), "ok" for nil, else err's text.
func errnoText(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return unix.ErrnoName(e)
	}
	return err.Error()
}

// childConfine confines itself and reports what it sees of the result and what it may do.
func childConfine(report map[string]string) error {
	// Threads that exist before Confine: the filter and no_new_privs must reach them too.
	stop := make(chan struct{})
	defer close(stop)
	for range 3 {
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread() // a thread of its own, kept until stop
			close(started)
			<-stop
		}()
		<-started
	}
	if err := Confine(); err != nil {
		return err
	}
	if err := threadStatus(report); err != nil {
		return err
	}
	for _, key := range []string{"Uid", "Gid", "Groups", "CapEff", "CapPrm"} {
		report[key] = statusField("/proc/self/status", key)
	}
	dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	report["dumpable"] = fmt.Sprintf("%d %s", dumpable, errnoText(err))
	for name, r := range map[string]int{"nofile": unix.RLIMIT_NOFILE, "fsize": unix.RLIMIT_FSIZE, "core": unix.RLIMIT_CORE} {
		var l unix.Rlimit
		if err := unix.Getrlimit(r, &l); err != nil {
			return err
		}
		report["rlimit_"+name] = fmt.Sprintf("%d/%d", l.Cur, l.Max)
	}
	report["cwd"], _ = os.Getwd()
	// If execve worked, /bin/true would replace this process and the report would be missing.
	report["execve"] = errnoText(syscall.Exec("/bin/true", []string{"true"}, nil))
	_, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	report["socket"] = errnoText(err)
	report["setuid"] = errnoText(unix.Setuid(0))
	report["set_dumpable"] = errnoText(unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0))
	_, err = os.Create(filepath.Join(os.TempDir(), "privsep-confined-"+strconv.Itoa(os.Getpid())))
	report["create"] = errnoText(err)
	report["mkdir"] = errnoText(os.Mkdir(filepath.Join(os.TempDir(), "privsep-confined-dir"), 0o700))
	pid, _, errno := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
	if errno == 0 && pid == 0 {
		unix.Exit(0) // the child of a fork that should have failed
	}
	report["fork"] = errnoText(errnoOrNil(errno))
	// A thread still starts (the runtime's clone with CLONE_THREAD).
	done := make(chan struct{})
	go func() { runtime.LockOSThread(); close(done) }() // the thread ends with the goroutine
	<-done
	return nil
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// threadStatus reports NoNewPrivs and Seccomp of every thread: "1" and "2" if all agree.
func threadStatus(report map[string]string) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	nnp, sec := map[string]bool{}, map[string]bool{}
	for _, t := range tasks {
		status := filepath.Join("/proc/self/task", t.Name(), "status")
		nnp[statusField(status, "NoNewPrivs")] = true
		sec[statusField(status, "Seccomp")] = true
	}
	join := func(m map[string]bool) string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		return strings.Join(s, ",")
	}
	report["threads"] = strconv.Itoa(len(tasks))
	report["NoNewPrivs"], report["Seccomp"] = join(nnp), join(sec)
	return nil
}

// statusField returns a field of a /proc status file, "" if it is missing.
func statusField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// childHandshake is a net child's TLS server: confined, the Channel at ChannelFD, the
// connection at ChannelFD+1; it reads "ping" and answers "pong".
func childHandshake(report map[string]string) error {
	if err := Confine(); err != nil {
		return err
	}
	pub, err := hex.DecodeString(os.Getenv(childPubEnv))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("bad %s", childPubEnv)
	}
	ch, err := NewFileChannel(os.NewFile(ChannelFD, "privsep"), NetSide)
	if err != nil {
		return err
	}
	defer ch.Close()
	conn, err := net.FileConn(os.NewFile(ChannelFD+1, "conn"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := transport.Server(ctx, conn, &transport.SecureConfig{Key: NewHostKeySigner(ch, pub)})
	if err != nil {
		return err
	}
	defer sc.Close()
	_ = sc.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil {
		return err
	}
	report["read"] = string(buf)
	_, err = sc.Write([]byte("pong"))
	return err
}

// childProbe tries to trace, read and signal the process childTargetEnv names.
func childProbe(report map[string]string) error {
	if err := Confine(); err != nil {
		return err
	}
	target, err := strconv.Atoi(os.Getenv(childTargetEnv))
	if err != nil {
		return err
	}
	report["uid"] = strconv.Itoa(os.Getuid())
	report["ptrace"] = errnoText(unix.PtraceAttach(target))
	_, err = unix.ProcessVMReadv(target, []unix.Iovec{{Base: new(byte), Len: 1}}, []unix.RemoteIovec{{Base: 0x400000, Len: 1}}, 0)
	report["process_vm_readv"] = errnoText(err)
	report["kill"] = errnoText(unix.Kill(target, unix.SIGTERM))
	_, err = os.ReadFile(fmt.Sprintf("/proc/%d/environ", target))
	report["environ"] = errnoText(err)
	return nil
}

// childWait confines itself, says so, and waits for its Channel to close.
func childWait() error {
	if err := Confine(); err != nil {
		return err
	}
	ch, err := NewFileChannel(os.NewFile(ChannelFD, "privsep"), NetSide)
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return err
	}
	_, _, err = ch.Receive()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// childMonitor is a monitor: it starts a net child ("wait") as a dynamic uid, prints its pid
// and waits to be killed.
func childMonitor() error {
	first, err := strconv.ParseUint(os.Getenv(childFirstEnv), 10, 32)
	if err != nil {
		return err
	}
	lease, err := LeaseUID(os.Getenv(childUIDDirEnv), UIDRange{First: uint32(first), Count: 16})
	if err != nil {
		return err
	}
	mine, theirs, err := Pair()
	if err != nil {
		return err
	}
	cmd := NetCommand(os.Getenv(childExeEnv), lease, theirs)
	cmd.Env = []string{childEnv + "=wait"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	theirs.Close()
	line := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(out, line); err != nil {
		return err
	}
	if _, err := fmt.Printf("%d\n", cmd.Process.Pid); err != nil {
		return err
	}
	defer runtime.KeepAlive(mine) // never closed: the child waits until this process is killed
	select {}
}
