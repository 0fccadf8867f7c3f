package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
)

// teardownGrace is the -stop-grace of the teardown tests: short, yet longer than the
// session's own hangup grace, so that the shell is gone and End does the rest.
const teardownGrace = 3 * time.Second

// cgroupsAvailable reports whether this machine gives sessions a cgroup (root and a writable
// TestSystemTeardown is issue 12's item 4 as a regress test: a job that ignores SIGHUP (and,
// where sessions get a cgroup, one that also left the session and the terminal with setsid -f)
// outlived the session in System mode, reparented to pid 1 and holding the pty. However the
// session ends (the client gone, the shell's exit, the daemon stopping as on SIGTERM), every
// process of it must be gone within -stop-grace.
func TestSystemTeardown(t *testing.T) {
	requireSystem(t)
	// With session cgroups (root and a writable cgroup v2, as in CI), a job that left the
	// session and the terminal must be ended too.
	contained, err := sessioncgroup.Available()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, ts *testServer, r interface{ Send(string) }, close func())
	}{
		{"client gone", func(t *testing.T, ts *testServer, _ interface{ Send(string) }, close func()) { close() }},
		{"shell exit", func(t *testing.T, ts *testServer, r interface{ Send(string) }, _ func()) { r.Send("exit\n") }},
		{"daemon stop", func(t *testing.T, ts *testServer, _ interface{ Send(string) }, _ func()) {
			if err := ts.stop(); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice := addUser(t, "rlt-alice")
			alice.authorize(t, 0o600)
			ts := startSystem(t, func(c *Config) { c.StopGrace = teardownGrace })
			r, err := ts.loginAs(t, alice.name, alice.key)
			if err != nil {
				t.Fatalf("login: %v\n%s", err, ts.log.String())
			}
			escaped := filepath.Join(alice.home, "escaped")
			// A job that ignores SIGHUP, in the shell's session and holding the terminal.
			cmds := `(trap '' HUP; exec sleep 4041) & echo JOB $! $((40+2)).` + "\n"
			if contained {
				// A double fork out of the session and away from the terminal, ignoring SIGHUP.
				cmds = `setsid -f sh -c 'trap "" HUP; echo $$ > ` + escaped + `; exec sleep 4042' </dev/null >/dev/null 2>&1; ` + cmds
			}
			r.Send(cmds)
			job, _ := strconv.Atoi(r.Expect(`JOB (\d+) 42\.`)[1])
			pids := []int{job}
			if contained {
				var b []byte
				waitFor(t, "the setsid job's pid", func() bool {
					b, _ = os.ReadFile(escaped)
					return strings.HasSuffix(string(b), "\n")
				})
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				pids = append(pids, pid)
			}
			loginPid, _ := strconv.Atoi(ts.waitLog(`msg="session started" .*pid=(\d+)`)[1])

			ended := time.Now()
			tc.end(t, ts, r, func() { _ = r.Close() })
			waitFor(t, "the session's processes to end", func() bool {
				for _, pid := range append(pids, loginPid) {
					if !gone(pid) {
						return false
					}
				}
				return len(userProcesses(alice.name)) == 0
			})
			// The promise is -stop-grace from the end; the slack covers a loaded machine's scheduling.
			if took := time.Since(ended); took > teardownGrace+2*time.Second {
				t.Errorf("the session's processes ended %v after the session, want within -stop-grace (%v)", took, teardownGrace)
			}
			ts.waitLog(`msg="session ended" .*user=rlt-alice`)
			if err := ts.stop(); err != nil {
				t.Error(err)
			}
			if strings.Contains(ts.log.String(), "cannot end the session's processes") {
				t.Errorf("the daemon could not end the session's processes:\n%s", ts.log.String())
			}
			checkNoSessionCgroups(t)
		})
	}
}

// checkNoSessionCgroups checks that no session cgroup this process made is left under its
// cgroup (others may have made theirs: a killed rlogind's stay until the next New).
func checkNoSessionCgroups(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		own, ok := strings.CutPrefix(strings.TrimSpace(line), "0::")
		if !ok {
			continue
		}
		for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			left, _ := filepath.Glob(filepath.Join(root, own, "rlogin-session-"+strconv.Itoa(os.Getpid())+"-*"))
			if len(left) > 0 {
				t.Errorf("session cgroups left behind: %v", left)
			}
		}
	}
}
