//go:build linux

package sessioncgroup_test

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
	"golang.org/x/sys/unix"
)

// A session started in a cgroup of its own, then ended: SIGHUP, a grace time, SIGKILL.
func Example() {
	cg, err := sessioncgroup.New()
	if errors.Is(err, sessioncgroup.ErrUnavailable) {
		fmt.Println("no cgroup here: fall back to the session id and terminal")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := exec.Command("/bin/sh", "-c", "trap '' HUP; sleep 60 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	cg.Signal(unix.SIGHUP) // ignored here
	if !cg.WaitEmpty(time.Now().Add(100 * time.Millisecond)) {
		_ = cg.Kill()
		cg.WaitEmpty(time.Now().Add(time.Second))
	}
	_ = cmd.Wait()
	if err := cg.Remove(); err != nil {
		fmt.Println(err)
	}
}
