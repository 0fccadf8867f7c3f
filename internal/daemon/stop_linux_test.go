package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStopEndsLeftoverJobsQuietly stops a server whose session has a job that ignores SIGHUP:
// the shell exits at the hangup and the session ends the job at StopGrace, so the stop finds
// nothing that outlived the grace and does not warn that it killed shells.
func TestStopEndsLeftoverJobsQuietly(t *testing.T) {
	// Long enough for bash to take its SIGHUP and exit on a loaded machine (CI runs two passes at
	// once).
	const stopGrace = time.Second
	ts := startServer(t, func(c *Config) { c.StopGrace = stopGrace })
	r := ts.login(t)
	r.Ready()
	shellPid, _ := strconv.Atoi(ts.waitLog(`msg="session started".*pid=(\d+)`)[1])
	r.Send("sh -c 'trap \"\" HUP; echo JOB=$$; exec sleep 1000' &\n")
	jobPid, _ := strconv.Atoi(r.Expect(`JOB=(\d+)`)[1])
	// The stop comes once bash waits for input again. Bash takes a SIGHUP that comes before
	// (while it is still between the job's start and its prompt, or between the prompt and its
	// wait) but acts on it only at its next input: it went on waiting, and the stop rightly
	// killed it at the grace.
	waitFor(t, "bash to wait for input", func() bool { return waitsForInput(shellPid) })
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	_ = r.Wait()
	if !gone(jobPid) {
		t.Fatalf("job %d still running after Serve returned", jobPid)
	}
	if log := ts.log.String(); strings.Contains(log, "killed their shells") {
		t.Fatalf("the stop warned about shells it killed, though only a job outlived the hangup:\n%s", log)
	}
}

// waitsForInput reports whether process pid is asleep in a system call that readline waits for
// input in (pselect, ppoll or read): /proc/pid/syscall starts with the call's number then.
func waitsForInput(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
	if err != nil {
		return false
	}
	nr, _, _ := strings.Cut(string(b), " ")
	switch nr {
	case strconv.Itoa(unix.SYS_PSELECT6), strconv.Itoa(unix.SYS_PPOLL), strconv.Itoa(unix.SYS_READ):
		return true
	}
	return false
}
