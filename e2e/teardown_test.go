package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
)

// teardownGrace is the -stop-grace of the teardown tests.
const teardownGrace = 2 * time.Second

// sessionCgroups reports whether rlogind, run by this user, gives each session a cgroup (root
// with a writable cgroup v2, as in CI): then a job that leaves the session and the terminal must
// TestTeardown: the real rlogind, its session ended three ways (the client killed, the shell's
// exit, SIGTERM to rlogind); a job that ignores SIGHUP (and, with session cgroups, one that also
// left the session and the terminal) is gone within -stop-grace of the end. Issue 12, item 4:
// such a job stayed, reparented to pid 1.
func TestTeardown(t *testing.T) {
	// With session cgroups (root and a writable cgroup v2, as in CI), a job that left the
	// session and the terminal must be ended too.
	contained, err := sessioncgroup.Available()
	if err != nil {
		t.Fatal(err)
	}
	for _, ending := range []string{"client killed", "shell exit", "SIGTERM"} {
		t.Run(ending, func(t *testing.T) {
			home := newHome(t)
			d := startDaemon(t, home, "", "-stop-grace", teardownGrace.String())
			// Resume off: with it, a killed client's session stays detached for rlogin -R
			// (TestReattachAfterClientKilled); this is the end of a session that does not.
			tm := rlogin(t, d, home, "-o", "Resume=no")
			tm.expect(`\(yes/no\)\? `)
			tm.send("yes\r")
			tm.ready()
			pidFile := filepath.Join(home, "escaped")
			cmds := `(trap '' HUP; exec sleep 4046) & echo JOB $! $((40+2)).` + "\r"
			if contained {
				cmds = `setsid -f sh -c 'trap "" HUP; echo $$ > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `; exec sleep 4047' </dev/null >/dev/null 2>&1; ` + cmds
			}
			tm.send(cmds)
			job, _ := strconv.Atoi(tm.expect(`JOB (\d+) 42\.`)[1])
			pids := []int{job}
			if contained {
				var b []byte
				waitFor(t, "the escaped job's pid", func() bool {
					var err error
					b, err = os.ReadFile(pidFile)
					return err == nil
				})
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				pids = append(pids, pid)
			}

			ended := time.Now()
			switch ending {
			case "client killed":
				_ = tm.cmd.Process.Kill()
			case "shell exit":
				tm.send("exit\r")
			case "SIGTERM":
				d.stop(t)
			}
			waitFor(t, "the session's processes to end", func() bool {
				for _, pid := range pids {
					if !exited(pid) {
						return false
					}
				}
				return len(processesIn(home)) == 0
			})
			// -stop-grace from the end; the slack covers scheduling on a loaded machine.
			if took := time.Since(ended); took > teardownGrace+2*time.Second {
				t.Errorf("the session's processes ended %v after the session, want within -stop-grace (%v)", took, teardownGrace)
			}
			d.stop(t)
			if strings.Contains(d.log.String(), "cannot end the session's processes") {
				t.Errorf("rlogind could not end the session's processes:\n%s", d.log.String())
			}
		})
	}
}

// exited reports whether pid has exited (no such process, or a zombie).
func exited(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(stat), ") Z ")
}
