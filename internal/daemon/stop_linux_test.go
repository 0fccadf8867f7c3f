package daemon

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStopEndsLeftoverJobsQuietly stops a server whose session has a job that ignores SIGHUP:
// the shell exits at the hangup and the session ends the job at StopGrace, so the stop finds
// nothing that outlived the grace and does not warn that it killed shells.
func TestStopEndsLeftoverJobsQuietly(t *testing.T) {
	// Long enough for bash to take its SIGHUP and exit on a loaded machine (CI runs two passes at
	// once): 300 ms was not, once, and the stop then rightly killed the shell.
	const stopGrace = time.Second
	ts := startServer(t, func(c *Config) { c.StopGrace = stopGrace })
	r := ts.login(t)
	r.Ready()
	r.Send("sh -c 'trap \"\" HUP; echo JOB=$$; exec sleep 1000' &\n")
	jobPid, _ := strconv.Atoi(r.Expect(`JOB=(\d+)`)[1])
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
