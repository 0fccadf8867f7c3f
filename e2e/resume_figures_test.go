package e2e

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// The figures of docs/benchmarks.md's "Resume" section: RLOGIN_RESUME_FIGURES=1 go test -count=1
// -run TestResumeFigures ./e2e/ (without -race: its figures would be the race detector's).

// figuresWanted skips the test unless the figures are asked for.
func figuresWanted(t *testing.T) {
	t.Helper()
	if os.Getenv("RLOGIN_RESUME_FIGURES") == "" {
		t.Skip("figures for docs/benchmarks.md: set RLOGIN_RESUME_FIGURES=1 to measure them")
	}
	if raceEnabled {
		t.Skip("figures under the race detector would be its own: run without -race")
	}
}

// spread is the median and range of ds, for the figures.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("median %v, range %v-%v (%d runs)", s[len(s)/2].Round(time.Millisecond),
		s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}

// TestResumeFigures measures, through a link of wanRTT (100 ms), the time from the path's
// restoration to the session being live again, 5 times for each kind of outage: a blackhole of
// 5 s (both ends have given the path up, rlogin's first try waits in the dead path) and a cut of
// 5 s (rlogin's tries are reset, and it waits between them). "Resumed" is rlogin's
// "reconnected"; "echo" is the output of a command typed during the outage, on the terminal.
func TestResumeFigures(t *testing.T) {
	figuresWanted(t)
	const runs = 5
	const outage = 5 * time.Second
	s := userResumeServer(t)
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	tm := s.rlogin(t, link)
	for _, kind := range []string{"blackhole", "cut"} {
		var resumed, echoed []time.Duration
		for i := 0; i < runs; i++ {
			start := time.Now()
			if kind == "cut" {
				link.Cut()
			} else {
				link.Blackhole()
			}
			tm.expect(statusLost) // the first try goes at once; in a blackhole it waits there
			tm.send(fmt.Sprintf("echo %s-%d-$((40+2))\r", kind, i))
			time.Sleep(time.Until(start.Add(outage))) // on purpose: the outage is what is measured
			link.Restore()
			restored := time.Now()
			tm.expectWithin(statusReconnected, shortTimeout+maxHandshake)
			resumed = append(resumed, time.Since(restored))
			tm.expect(fmt.Sprintf(`%s-%d-42`, kind, i))
			echoed = append(echoed, time.Since(restored))
		}
		t.Logf("%s of %v, %v round trip: resumed %s; echo %s", kind, outage, wanRTT, spread(resumed), spread(echoed))
	}
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Errorf("rlogin exited %d, want 0", code)
	}
}

// rssKiB is the resident set of process pid, in KiB.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// TestDetachedMemoryFigures measures the memory of rlogind (user mode: one process) per
// detached session: n sessions of the session package logged in, idle, then all of their
// connections lost; then each shell writes 2 MB while detached, of which rlogind keeps its
// -detach-buffer (1 MiB).
func TestDetachedMemoryFigures(t *testing.T) {
	figuresWanted(t)
	const n = 50
	s := userResumeServer(t)
	sd := sessionDialer{addr: s.d.addr, hostKey: s.hostKey}
	key := newEd25519(t)
	writeFile(t, filepath.Join(s.d.home, ".rlogin", "authorized_keys"), string(keys.MarshalAuthorizedKey(key.Public().(ed25519.PublicKey), "figures")))
	pid := s.d.cmd.Process.Pid
	base := rssKiB(t, pid)
	remotes := make([]*logintest.Remote, 0, n)
	conns := make([]*recordingConn, 0, n)
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
		conn, err := sd.dial(ctx, "127.0.0.1", key)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c := session.NewClient(conn, session.Request{User: logintest.CurrentUser(t), Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
		c.Signer = key
		c.Reconnect = func(context.Context, int, error) (net.Conn, error) {
			return nil, errors.New("the figures' clients do not come back")
		}
		out := &termtest.Buffer{}
		c.Stdout = out
		r, err := logintest.StartClient(t, c, out)
		if err != nil {
			t.Fatal(err)
		}
		r.Ready()
		remotes, conns = append(remotes, r), append(conns, conn)
	}
	attached := rssKiB(t, pid)
	for i, r := range remotes {
		// Once detached, each shell writes 2 MB, then leaves a file to say it is done.
		r.Send(fmt.Sprintf("(sleep 2; head -c 2000000 /dev/zero | tr '\\0' x; touch %s/done.%d) &\n", s.home, i))
		r.Expect(`\[\d+\] \d+`)
	}
	for _, c := range conns {
		c.lose()
	}
	s.logLine(t, `msg="session detached"`, n-1)
	detached := rssKiB(t, pid)
	for i := range remotes {
		waitFor(t, "the shells' output", func() bool {
			_, err := os.Stat(filepath.Join(s.home, fmt.Sprintf("done.%d", i)))
			return err == nil
		})
	}
	full := rssKiB(t, pid)
	t.Logf("rlogind RSS: %d KiB alone; %d sessions attached %d KiB (%.1f KiB each); detached %d KiB (%.1f KiB each); with 2 MB written by each while detached %d KiB (%.1f KiB each)",
		base, n, attached, float64(attached-base)/n, detached, float64(detached-base)/n, full, float64(full-base)/n)
}
