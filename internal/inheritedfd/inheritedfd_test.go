package inheritedfd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// shortTimeout bounds every child process of these tests.
const shortTimeout = 20 * time.Second

// childEnv makes the test binary a child of a test (see child) instead of running tests.
const childEnv = "INHERITEDFD_TEST_CHILD"

// childEnviron is the whole environment of a child in mode: childEnv, and the race detector's
// GORACE if set, so that a child under -race exits as the test process does (CI's
// atexit_sleep_ms=0 spares the second the detector otherwise sleeps at every exit).
func childEnviron(mode string) []string {
	env := []string{childEnv + "=" + mode}
	if v, ok := os.LookupEnv("GORACE"); ok {
		env = append(env, "GORACE="+v)
	}
	return env
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	goleak.VerifyTestMain(m)
}

// child is a process started with descriptors 3, 4 and 5 inherited (a test's ExtraFiles). With
// mode "list" it prints the descriptors it inherited. Otherwise it first sets up what the Go
// runtime and a daemon would (the network poller, a file of its own), then gets rid of its
// inherited descriptors but 4 in the way mode names, and prints "open=" the descriptors from 3
// to 5 still open, "own=" whether its own file survived, "net=" whether the network still
// works, and "grandchild=" what a program it starts inherits.
func child(mode string) int {
	if mode == "list" {
		fmt.Println(strings.Join(inheritedNow(), ","))
		return 0
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // the runtime's poller descriptors exist now
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer l.Close()
	own, err := os.Open(os.Args[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer own.Close()
	keep := []int{4}
	switch mode {
	case "Close":
		err = Close(keep...)
	case "markCloseOnExec":
		err = markCloseOnExec(keep)
	case "closeUpTo":
		closeUpTo(1024, keep)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	var open []string
	for fd := 3; fd <= 5; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			open = append(open, strconv.Itoa(fd))
		}
	}
	_, ownErr := own.Stat()
	netErr := roundTrip(l)
	cmd := exec.Command(os.Args[0])
	cmd.Env = childEnviron("list")
	out, err := cmd.Output()
	if err != nil {
		fmt.Println("grandchild:", err)
		return 1
	}
	fmt.Printf("open=%s own=%v net=%v grandchild=%s\n", strings.Join(open, ","), ownErr, netErr, strings.TrimSpace(string(out)))
	return 0
}

// inheritedNow lists the descriptors without close-on-exec: those the process inherited.
func inheritedNow() []string {
	ents, err := os.ReadDir(procSelfFD)
	if err != nil {
		return []string{err.Error()}
	}
	var fds []string
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, e.Name())
		}
	}
	slices.SortFunc(fds, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	return fds
}

// roundTrip connects to l and exchanges a byte, under a deadline: the runtime's network poller
// still works.
func roundTrip(l net.Listener) error {
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, err = c.Write([]byte("x"))
			_ = c.Close()
		}
		accepted <- err
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), shortTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(shortTimeout))
	_, err = c.Read(make([]byte, 1))
	if aerr := <-accepted; err == nil {
		err = aerr
	}
	return err
}

// TestClose starts a child holding descriptors 3, 4 and 5 on a root-only file, as a daemon
// started from a shell with `3<secret 4<secret 5<secret` would, and checks what each way of
// getting rid of them leaves in the child and in a program the child starts.
func TestClose(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode string
		want string
	}{
		// Closed but the kept one; the runtime's and the child's own descriptors untouched.
		{"Close", "open=4 own=<nil> net=<nil> grandchild=0,1,2,4"},
		// Without /proc: still open in the child, but no program it starts gets them.
		{"markCloseOnExec", "open=3,4,5 own=<nil> net=<nil> grandchild=0,1,2,4"},
		{"closeUpTo", "open=4 own=<nil> net=<nil> grandchild=0,1,2,4"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var files []*os.File
			for range 3 {
				f, err := os.Open(secret)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
			}
			ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0])
			cmd.Env = childEnviron(tc.mode)
			cmd.ExtraFiles = files
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("child says %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCloseIfInherited checks the rule on descriptors of the test process itself: one without
// close-on-exec is inherited and closed, unless kept; one with it is the process's own.
func TestCloseIfInherited(t *testing.T) {
	own, err := os.Open(os.Args[0]) // close-on-exec, as everything Go opens
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	inherited, err := unix.Dup(int(own.Fd())) // without close-on-exec, as an inherited one
	if err != nil {
		t.Fatal(err)
	}
	kept, err := unix.Dup(int(own.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(kept)
	for _, fd := range []int{int(own.Fd()), inherited, kept, 0, 1, 2} {
		closeIfInherited(fd, []int{kept})
	}
	isOpen := func(fd int) bool { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); return err == nil }
	if isOpen(inherited) {
		_ = unix.Close(inherited)
		t.Error("a descriptor without close-on-exec stayed open")
	}
	for _, fd := range []int{int(own.Fd()), kept, 0, 1, 2} {
		if !isOpen(fd) {
			t.Errorf("descriptor %d was closed", fd)
		}
	}
	closeIfInherited(inherited, nil) // closed by now: nothing happens
}

func TestCloseListedWithoutProc(t *testing.T) {
	if err := closeListed(filepath.Join(t.TempDir(), "no-proc"), nil); err == nil {
		t.Error("a missing /proc/self/fd was not reported: Close would not fall back")
	}
}

func TestGaps(t *testing.T) {
	const last = ^uint(0)
	for _, tc := range []struct {
		keep []int
		want [][2]uint
	}{
		{nil, [][2]uint{{3, last}}},
		{[]int{3, 4}, [][2]uint{{5, last}}},
		{[]int{0, 2, 5, 3, 9}, [][2]uint{{4, 4}, {6, 8}, {10, last}}},
		{[]int{-1, 7, 7}, [][2]uint{{3, 6}, {8, last}}},
	} {
		if got := gaps(tc.keep); !slices.Equal(got, tc.want) {
			t.Errorf("gaps(%v) = %v, want %v", tc.keep, got, tc.want)
		}
	}
}

func TestRange(t *testing.T) {
	if got := Range(3, 2); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("Range(3, 2) = %v", got)
	}
	if got := Range(3, 0); len(got) != 0 {
		t.Errorf("Range(3, 0) = %v", got)
	}
}
