//go:build linux

package sigreset_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/sigreset"
)

// The test binary plays three parts, chosen by stageEnv:
//   - "dirty" or "clean": a launcher that sets up the signal state a daemon might
//     inherit (dirty: ignored and blocked signals; clean: none) and executes
//     the test binary again as the daemon;
//   - "daemon": calls sigreset.Reset like rlogind's main, then runs grandchildren
//     and reports what they inherited.
const stageEnv = "SIGRESET_TEST_STAGE"

// Signals the dirty launcher ignores and blocks. SIGTSTP is one the Go runtime
// leaves ignored without signal.Ignored reporting it.
var (
	ignoreAtStart = []os.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGTSTP}
	blockAtStart  = []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGTERM}
)

func TestMain(m *testing.M) {
	switch stage := os.Getenv(stageEnv); stage {
	case "":
		goleak.VerifyTestMain(m)
	case "dirty", "clean":
		launch(stage)
	case "daemon":
		daemon()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", stageEnv, stage)
		os.Exit(2)
	}
}

// launch sets up the signal state and executes the test binary as the daemon,
// so that the daemon starts with that state. It does not return.
func launch(stage string) {
	runtime.LockOSThread() // execve keeps this thread's mask
	var mask unix.Sigset_t
	if stage == "dirty" {
		signal.Ignore(ignoreAtStart...)
		for _, sig := range blockAtStart {
			mask.Val[0] |= 1 << (sig - 1)
		}
	} else {
		// Catch every catchable signal, so that none is ignored after execve.
		for sig := 1; sig < 32; sig++ {
			if s := syscall.Signal(sig); s != syscall.SIGKILL && s != syscall.SIGSTOP {
				signal.Notify(make(chan os.Signal, 1), s)
			}
		}
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &mask, nil); err != nil {
		fail("launcher: %v", err)
	}
	err := syscall.Exec("/proc/self/exe", os.Args, withStage("daemon"))
	fail("launcher: exec: %v", err)
}

// daemon is the process under test. It reports its own signal state before Reset
// ("start" lines: one per execution), runs the grandchildren, says "ready", then
// waits for a line on stdin, says "alive" and exits 0.
func daemon() {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("daemon: %v", err)
	}
	fmt.Printf("start %s %s\n", field(status, "SigBlk"), field(status, "SigIgn"))

	if err := sigreset.Reset(); err != nil {
		fail("daemon: %v", err)
	}

	out, err := exec.Command("grep", "Sig", "/proc/self/status").Output()
	if err != nil {
		fail("daemon: grep: %v", err)
	}
	fmt.Printf("grandchild %s %s\n", field(out, "SigBlk"), field(out, "SigIgn"))
	out, err = exec.Command("env").Output()
	if err != nil {
		fail("daemon: env: %v", err)
	}
	fmt.Printf("grandchild-env-marker %v\n", bytes.Contains(out, []byte("RLOGIN_SIGRESET")))
	fmt.Println("ready")

	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail("daemon: read stdin: %v", err)
	}
	fmt.Println("alive")
	os.Exit(0)
}

// withStage returns this process's environment with stageEnv set to stage.
func withStage(stage string) []string {
	env := []string{stageEnv + "=" + stage}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, stageEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(3)
}

// field returns the value of a "Name:\tvalue" line of a /proc status file.
func field(status []byte, name string) string {
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

// daemonProc is a daemon started through a launcher, under a watchdog.
type daemonProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *bytes.Buffer
}

func startDaemon(t *testing.T, stage string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = withStage(stage)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: new(bytes.Buffer)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{})
	watchdog := time.AfterFunc(30*time.Second, func() {
		defer close(fired)
		t.Error("watchdog: daemon still running after 30s; killing it")
		_ = cmd.Process.Kill()
	})
	t.Cleanup(func() {
		if !watchdog.Stop() {
			<-fired
		}
		_ = cmd.Process.Kill() // no-op once it has been waited for
		_ = cmd.Wait()
	})
	return d
}

// readUntilReady returns the daemon's lines up to "ready".
func (d *daemonProc) readUntilReady(t *testing.T) []string {
	t.Helper()
	var lines []string
	for d.lines.Scan() {
		if d.lines.Text() == "ready" {
			return lines
		}
		lines = append(lines, d.lines.Text())
	}
	t.Fatalf("daemon output ended before ready: %q; stderr: %s", lines, d.stderr)
	return nil
}

// finish asks the daemon to exit and checks that it says "alive" and exits 0.
func (d *daemonProc) finish(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(d.stdin, "exit\n"); err != nil {
		t.Fatal(err)
	}
	if !d.lines.Scan() || d.lines.Text() != "alive" {
		t.Errorf("daemon did not answer alive (got %q)", d.lines.Text())
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("daemon: %v; stderr: %s", err, d.stderr)
	}
}

const zeroMask = "0000000000000000"

func TestResetInheritedSignals(t *testing.T) {
	d := startDaemon(t, "dirty")
	lines := d.readUntilReady(t)

	var starts []string
	for _, l := range lines {
		if strings.HasPrefix(l, "start ") {
			starts = append(starts, l)
		}
	}
	// Executed twice: as launched (signals blocked), then re-executed by Reset.
	if len(starts) != 2 || strings.Contains(starts[0], "start "+zeroMask+" ") ||
		!strings.HasPrefix(starts[1], "start "+zeroMask+" ") {
		t.Errorf("want a start with signals blocked, then one re-executed with none blocked; got %q", starts)
	}
	if want := "grandchild " + zeroMask + " " + zeroMask; !contains(lines, want) {
		t.Errorf("grandchild did not get an empty mask and no ignored signals: want %q in %q", want, lines)
	}
	if !contains(lines, "grandchild-env-marker false") {
		t.Errorf("the re-execution marker leaked into the grandchild's environment: %q", lines)
	}

	// SIGINT, ignored when the daemon started, must still not stop it.
	pid := d.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, pid, syscall.SIGINT)
	d.finish(t)
}

func TestResetCleanStartDoesNotReexecute(t *testing.T) {
	d := startDaemon(t, "clean")
	lines := d.readUntilReady(t)
	var starts int
	for _, l := range lines {
		if strings.HasPrefix(l, "start ") {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("daemon started %d times, want 1: %q", starts, lines)
	}
	if want := "grandchild " + zeroMask + " " + zeroMask; !contains(lines, want) {
		t.Errorf("want %q in %q", want, lines)
	}
	d.finish(t)
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// waitDelivered waits until sig is no longer pending for pid (it has been
// delivered: caught, ignored or acted on). It fails if pid has died meanwhile.
func waitDelivered(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	bit := uint64(1) << (sig - 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if state := field(status, "State"); !strings.HasPrefix(state, "S") && !strings.HasPrefix(state, "R") {
			t.Fatalf("daemon state %q after %v", state, sig)
		}
		pending := uint64(0)
		for _, name := range []string{"SigPnd", "ShdPnd"} {
			v, err := strconv.ParseUint(field(status, name), 16, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			pending |= v
		}
		if pending&bit == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v still pending for the daemon after 10s", sig)
		}
		time.Sleep(time.Millisecond)
	}
}
