// Command rloginscale measures how rlogind scales, with OpenSSH's sshd under the same load as
// the anchor:
//
//  1. Many concurrent idle sessions (-sessions, default 1000) against one server: the server's
//     memory (RSS, and PSS, which divides shared pages fairly among sshd's processes), open
//     descriptors, goroutines (rlogind) or processes (sshd), per session; then the keystroke echo
//     latency (median, p99) on a sample of them (-sample, default 50) while the others idle.
//  2. Many sequential connect/login/logout cycles (-cycles, default 10000) against rlogind: its
//     descriptors, goroutines, ptys, child processes and RSS, sampled along the way, must come back
//     to where they started.
//
// The sessions are driven from inside this process (package bench/internal/driver: rlogin
// sessions over transport+session as cmd/rlogin does, ssh sessions over golang.org/x/crypto/ssh),
// not by a client process on a pty each. The shells are the temporary user's login shell,
// /bin/sh (dash). rlogind is its profiling build (go build -tags profile), which serves
// net/http/pprof on a loopback port so that its goroutines can be counted.
//
// Run it as root from the repository's bench directory (bench/run.sh scale does):
//
//	go run ./cmd/rloginscale [-sessions 1000] [-cycles 10000]
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/bench/internal/driver"
	"github.com/rlogin-go/rlogin/bench/internal/proc"
	"github.com/rlogin-go/rlogin/bench/internal/report"
	"github.com/rlogin-go/rlogin/bench/internal/servers"
	"github.com/rlogin-go/rlogin/keys"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "rloginscale: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	sessions int
	sample   int
	keys     int
	cycles   int
	parallel int
	noSSH    bool
	userName string
	out      string
	keep     bool
	heapProf string
	flood    int
	envS     string
}

func parseFlags(args []string) (*options, error) {
	var o options
	fs := flag.NewFlagSet("rloginscale", flag.ContinueOnError)
	fs.IntVar(&o.sessions, "sessions", 1000, "concurrent idle sessions")
	fs.IntVar(&o.sample, "sample", 50, "sessions whose echo latency is measured while the others idle")
	fs.IntVar(&o.keys, "keys", 20, "keystrokes per sampled session")
	fs.IntVar(&o.cycles, "cycles", 10000, "sequential connect/login/logout cycles against rlogind (0: skip)")
	fs.IntVar(&o.parallel, "parallel", 4, "logins in progress at once while opening the sessions (rlogind refuses a 5th unauthenticated connection from one address by default, sshd's MaxStartups starts dropping at 10)")
	fs.BoolVar(&o.noSSH, "no-ssh", false, "skip the sshd anchor")
	fs.StringVar(&o.userName, "user", "rlscale", "name of the temporary user to create")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file, relative to the repository, whose \"scale\" section gets the results (\"\" for none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configurations)")
	fs.StringVar(&o.heapProf, "heapprofile", "", "write rlogind's heap profile, taken while the concurrent sessions are open, to `file`")
	fs.IntVar(&o.flood, "flood", 2, "sessions that run yes(1) while the echo is measured once more on the sampled sessions (0: skip)")
	fs.StringVar(&o.envS, "rlogind-env", "", "extra environment for rlogind, comma-separated (experiments: GOMAXPROCS=2)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.sample > 0 && o.flood >= o.sessions/o.sample {
		return nil, errors.New("-flood must be below -sessions / -sample, so that no sampled session floods")
	}
	if o.sessions < 1 || o.parallel < 1 || o.sample < 0 || o.sample > o.sessions || o.keys < 1 || o.flood < 0 || o.sample+o.flood > o.sessions {
		return nil, errors.New("need -sessions >= 1, -parallel >= 1, 0 <= -sample, 0 <= -flood, -sample + -flood <= -sessions, -keys >= 1")
	}
	return &o, nil
}

const (
	loginTimeout = 60 * time.Second
	stepTimeout  = 20 * time.Second
)

func run(args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run me as root: I create a temporary user, start sshd and raise limits (see bench/README.md)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	limits, err := raiseLimits(o.sessions)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, limits)

	root, err := servers.ModuleRoot()
	if err != nil {
		return err
	}
	machine := report.Describe()
	dir, err := os.MkdirTemp("", "rloginscale-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stdout, "temporary directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintln(stdout, "building rlogind ...")
	// The profiling build (cmd/rlogind/profile.go) serves net/http/pprof at RLOGIND_DEBUG_ADDR.
	bins, err := servers.Build(root, dir, []string{"profile"}, "cmd/rlogind")
	if err != nil {
		return err
	}
	u, err := servers.NewUser(dir, o.userName, "/bin/sh")
	if err != nil {
		return err
	}
	defer u.Close()
	fmt.Fprintf(stdout, "temporary user %s (uid %d), shell %s\n", u.Name, u.UID, u.Shell)

	debugPort, err := servers.FreePort()
	if err != nil {
		return err
	}
	debugAddr := "127.0.0.1:" + strconv.Itoa(debugPort)
	// rlogind caps sessions at 512 by default (-max-sessions); sshd has no such cap.
	rl, err := servers.StartRlogind(ctx, u, bins["rlogind"], dir,
		[]string{"-max-sessions", "none"}, append([]string{"RLOGIND_DEBUG_ADDR=" + debugAddr}, splitEnv(o.envS)...))
	if err != nil {
		return err
	}
	defer rl.Close()
	key, err := keys.Load(filepath.Join(u.Home, ".rlogin", "id_ed25519"))
	if err != nil {
		return err
	}
	hostKey, err := parseEd25519(rl.HostKeyPub)
	if err != nil {
		return err
	}
	dialRlogin := func(ctx context.Context) (driver.Session, error) {
		return driver.DialRlogin(ctx, rl.Addr, key, hostKey, u.Name)
	}
	goroutines := pprofDebug(debugAddr)

	var b strings.Builder
	fmt.Fprintf(&b, "### Run of %s\n\n%s\nCommand: `%s`\n\n", machine.Date.UTC().Format("2006-01-02"), machine.Markdown(),
		strings.TrimSpace("cd bench && go run ./cmd/rloginscale "+strings.Join(args, " ")))
	fmt.Fprintf(&b, "%s\n\n", limits)

	fmt.Fprintf(stdout, "rlogind: %d concurrent sessions ...\n", o.sessions)
	rlRes, err := concurrent(ctx, stdout, o, rl.Pid(), dialRlogin, goroutines)
	if err != nil {
		return fmt.Errorf("rlogind: %w", err)
	}
	results := []*concurrentResult{rlRes}
	labels := []string{"rlogind (user mode)"}

	if !o.noSSH {
		sshd, err := servers.StartSshd(ctx, u, dir)
		if err != nil {
			return err
		}
		defer sshd.Close()
		signer, hostKey, err := sshKeys(u, sshd)
		if err != nil {
			return err
		}
		dialSSH := func(ctx context.Context) (driver.Session, error) {
			return driver.DialSSH(ctx, sshd.Addr, signer, hostKey, u.Name)
		}
		fmt.Fprintf(stdout, "sshd: %d concurrent sessions ...\n", o.sessions)
		sshRes, err := concurrent(ctx, stdout, o, sshd.Pid(), dialSSH, nil)
		if err != nil {
			return fmt.Errorf("sshd: %w", err)
		}
		results = append(results, sshRes)
		labels = append(labels, "OpenSSH sshd")
	}
	b.WriteString(concurrentTable(o, labels, results))

	if o.cycles > 0 {
		fmt.Fprintf(stdout, "rlogind: %d sequential login/logout cycles ...\n", o.cycles)
		table, err := cycles(ctx, stdout, o, rl.Pid(), dialRlogin, goroutines)
		if err != nil {
			return fmt.Errorf("rlogind cycles: %w", err)
		}
		b.WriteString("\n" + table)
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, b.String())
	if o.out != "" {
		if err := report.ReplaceSection(outPath(root, o.out), "scale", b.String()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten to %s\n", o.out)
	}
	return nil
}

// raiseLimits raises this process's limits, which the servers it starts inherit: open files (a
// session takes a few descriptors in the server and one here) and processes (the user runs a
// shell per session, and sshd two processes more). It raises the hard limits when it may
// (CAP_SYS_RESOURCE), else the soft limits to the hard ones, and says which it got.
func raiseLimits(sessions int) (string, error) {
	nrOpen := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			nrOpen = v
		}
	}
	const rlimitNproc = 6 // RLIMIT_NPROC on Linux
	var got []string
	for _, l := range []struct {
		name     string
		resource int
		want     uint64
	}{
		{"RLIMIT_NOFILE", syscall.RLIMIT_NOFILE, nrOpen},
		{"RLIMIT_NPROC", rlimitNproc, ^uint64(0)},
	} {
		if err := syscall.Setrlimit(l.resource, &syscall.Rlimit{Cur: l.want, Max: l.want}); err != nil {
			var cur syscall.Rlimit
			if err := syscall.Getrlimit(l.resource, &cur); err != nil {
				return "", fmt.Errorf("%s: %w", l.name, err)
			}
			cur.Cur = cur.Max
			if err := syscall.Setrlimit(l.resource, &cur); err != nil {
				return "", fmt.Errorf("raising %s: %w", l.name, err)
			}
		}
		var now syscall.Rlimit
		if err := syscall.Getrlimit(l.resource, &now); err != nil {
			return "", fmt.Errorf("%s: %w", l.name, err)
		}
		v := strconv.FormatUint(now.Cur, 10)
		if now.Cur == ^uint64(0) {
			v = "unlimited"
		}
		got = append(got, l.name+" "+v)
	}
	ptyMax, _ := os.ReadFile("/proc/sys/kernel/pty/max")
	pidMax, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	return fmt.Sprintf("Limits for the harness and the servers it starts: %s (raised as far as this process may); kernel.pty.max %s, kernel.pid_max %s. %d sessions need %d ptys and, with sshd, about %d processes.",
		strings.Join(got, ", "), strings.TrimSpace(string(ptyMax)), strings.TrimSpace(string(pidMax)), sessions, sessions, 3*sessions), nil
}

func parseEd25519(authorizedKey string) (ed25519.PublicKey, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return nil, err
	}
	ck, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, errors.New("host key is not a crypto key")
	}
	k, ok := ck.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("host key is not ed25519")
	}
	return k, nil
}

func sshKeys(u *servers.User, s *servers.Server) (ssh.Signer, ssh.PublicKey, error) {
	pem, err := os.ReadFile(filepath.Join(u.Home, ".ssh", "id_ed25519"))
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, nil, err
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKeyPub))
	if err != nil {
		return nil, nil, err
	}
	return signer, hk, nil
}

// pprofDebug reads the profiling rlogind's net/http/pprof endpoint.
type pprofDebug string

// goroutines is the goroutine count; -1 if it cannot be read.
func (addr pprofDebug) goroutines() int { return countGoroutines(string(addr)) }

// memStats reads the runtime.MemStats that the heap profile ends with ("# HeapInuse = 123").
func (addr pprofDebug) memStats() map[string]int64 {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + string(addr) + "/debug/pprof/heap?debug=1")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	m := make(map[string]int64)
	for line := range strings.SplitSeq(string(body), "\n") {
		// "# HeapInuse = 123"; "# Stack = 123 / 456" is StackInuse / StackSys.
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok && !strings.Contains(k, " ") {
			if k == "Stack" {
				k = "StackInuse"
			}
			v, _, _ = strings.Cut(v, " ")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// saveHeapProfile writes the profiling rlogind's heap profile to path.
func saveHeapProfile(addr, path string) error {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// countGoroutines reads the goroutine count from the profiling rlogind's pprof endpoint; -1 if it cannot.
func countGoroutines(addr string) int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line := make([]byte, 128)
	n, _ := io.ReadFull(resp.Body, line)
	// "goroutine profile: total 123\n..."
	f := strings.Fields(strings.SplitN(string(line[:n]), "\n", 2)[0])
	if len(f) == 4 {
		if v, err := strconv.Atoi(f[3]); err == nil {
			return v
		}
	}
	return -1
}

// usage is what the server's own processes use at one moment.
type usage struct {
	proc.Usage
	goroutines int              // -1 when unknown
	children   int              // direct children of the main process
	mem        map[string]int64 // Go runtime memory statistics, for rlogind
}

// debug reads what the profiling rlogind tells about itself: goroutines and memory statistics.
type debug interface {
	goroutines() int
	memStats() map[string]int64
}

func measureUsage(pid int, d debug) (usage, error) {
	t, err := proc.Snapshot()
	if err != nil {
		return usage{}, err
	}
	u := usage{Usage: t.TreeUsage(pid, proc.NoTTY), goroutines: -1, children: len(t.Children(pid))}
	if d != nil {
		u.goroutines = d.goroutines()
		u.mem = d.memStats()
	}
	return u, nil
}

// openSessions logs in n sessions, at most parallel at once, each up to its shell answering a
// command. On error it closes what it opened.
func openSessions(ctx context.Context, n, parallel int, dial func(context.Context) (driver.Session, error)) ([]driver.Session, error) {
	sessions := make([]driver.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, loginTimeout)
			defer cancel()
			s, err := dial(lctx)
			if err == nil {
				if err = s.Send("echo RDY$((40+2))\n"); err == nil {
					err = s.Expect("RDY42", loginTimeout)
				}
				if err != nil {
					_ = s.Close()
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("session %d: %w", i, err)
				return
			}
			sessions[i] = s
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeSessions(sessions)
		return nil, err
	}
	return sessions, nil
}

func closeSessions(sessions []driver.Session) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, s := range sessions {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = s.Close()
		})
	}
	wg.Wait()
}

// concurrentResult is what the concurrent test measured on one server.
type concurrentResult struct {
	before, after usage
	sessions      int
	openTime      time.Duration
	echo          []int64 // ns
	floodEcho     []int64 // ns, while o.flood sessions run `yes`
}

func concurrent(ctx context.Context, stdout io.Writer, o *options, pid int, dial func(context.Context) (driver.Session, error), goroutines debug) (*concurrentResult, error) {
	r := &concurrentResult{sessions: o.sessions}
	// One login first, so what every server sets up once (code paths, buffers, caches) is not
	// charged to the sessions.
	warm, err := openSessions(ctx, 1, 1, dial)
	if err != nil {
		return nil, err
	}
	closeSessions(warm)
	if err := waitChildren(pid, 0, stepTimeout); err != nil {
		return nil, err
	}
	if r.before, err = measureUsage(pid, goroutines); err != nil {
		return nil, err
	}
	start := time.Now()
	sessions, err := openSessions(ctx, o.sessions, o.parallel, dial)
	if err != nil {
		return nil, err
	}
	defer func() { closeSessions(sessions) }() // on an early return
	r.openTime = time.Since(start)
	fmt.Fprintf(stdout, "  %d sessions logged in in %v\n", o.sessions, r.openTime.Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the logins' transient work (GC, exiting helpers) settle
	if r.after, err = measureUsage(pid, goroutines); err != nil {
		return nil, err
	}
	if d, ok := goroutines.(pprofDebug); ok && o.heapProf != "" {
		if err := saveHeapProfile(string(d), o.heapProf); err != nil {
			return nil, err
		}
	}
	// Echo on a sample spread over the sessions, while the others idle.
	for k := range o.sample {
		s := sessions[k*len(sessions)/o.sample]
		if err := s.Send("echo CAT$((40+2)); cat >/dev/null\n"); err != nil {
			return nil, err
		}
		if err := s.Expect("CAT42", stepTimeout); err != nil {
			return nil, err
		}
		// The newline after CAT42 may still be on its way; it must not count as an echo.
		if err := s.Expect("\n", stepTimeout); err != nil {
			return nil, err
		}
		for i := range o.keys {
			d, err := s.Echo(byte('a'+i%26), stepTimeout)
			if err != nil {
				return nil, err
			}
			r.echo = append(r.echo, int64(d))
		}
	}
	fmt.Fprintf(stdout, "  server: %+v\n  echo median %.3f ms p99 %.3f ms over %d keystrokes\n", r.after,
		float64(report.Median(r.echo))/1e6, float64(report.Quantile(r.echo, 0.99))/1e6, len(r.echo))
	if o.flood > 0 {
		if r.floodEcho, err = echoUnderFlood(sessions, o); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "  with %d sessions flooding: echo median %.3f ms p99 %.3f ms over %d keystrokes\n", o.flood,
			float64(report.Median(r.floodEcho))/1e6, float64(report.Quantile(r.floodEcho, 0.99))/1e6, len(r.floodEcho))
	}
	closeSessions(sessions)
	sessions = nil
	if err := waitChildren(pid, 0, 2*time.Minute); err != nil {
		return nil, err
	}
	return r, nil
}

// echoUnderFlood measures the echo on the sampled sessions (already in `cat >/dev/null`) again
// while the last o.flood sessions run `yes`, whose output the harness reads and drops; then it
// stops the floods with ^C and waits for their prompts.
func echoUnderFlood(sessions []driver.Session, o *options) ([]int64, error) {
	floods := sessions[len(sessions)-o.flood:]
	for _, s := range floods {
		if err := s.Send("yes FLOOD\n"); err != nil {
			return nil, err
		}
		if err := s.Expect("FLOOD\r\nFLOOD\r\n", stepTimeout); err != nil {
			return nil, err
		}
	}
	var echo []int64
	for k := range o.sample {
		s := sessions[k*len(sessions)/o.sample]
		for i := range o.keys {
			d, err := s.Echo(byte('a'+i%26), stepTimeout)
			if err != nil {
				return nil, err
			}
			echo = append(echo, int64(d))
		}
	}
	for _, s := range floods {
		if err := s.Send("\x03echo STOP$((40+2))\n"); err != nil {
			return nil, err
		}
		if err := s.Expect("STOP42", stepTimeout); err != nil {
			return nil, err
		}
	}
	return echo, nil
}

// splitEnv splits a comma-separated list of NAME=value settings.
func splitEnv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// waitChildren waits until pid has at most n children with a controlling terminal or none
// (sessions' shells and sshd's per-connection processes), or the timeout.
func waitChildren(pid, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		t, err := proc.Snapshot()
		if err != nil {
			return err
		}
		c := len(t.Children(pid))
		if c <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %d still has %d children after %v", pid, c, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func kib(b int64) float64 { return float64(b) / 1024 }

func n(r *concurrentResult) float64 { return float64(r.sessions) }

func sum(m map[string]int64, keys ...string) int64 {
	var t int64
	for _, k := range keys {
		t += m[k]
	}
	return t
}

func concurrentTable(o *options, labels []string, rs []*concurrentResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### %d concurrent idle sessions\n\n", o.sessions)
	b.WriteString("Per session: the server's growth from before the sessions to after, divided by their number. Only the server's own processes count (for sshd: the listener and its per-connection processes, which have no controlling terminal), not the shells.\n\n")
	b.WriteString("Measured 2 s after the last login, with the sessions idle at their prompts.\n\n")
	b.WriteString("| server | RSS KiB/session | PSS KiB/session | fds/session | goroutines/session | processes/session | threads/session | logins/s (parallel " + strconv.Itoa(o.parallel) + ") | echo median ms | echo p99 ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range rs {
		n := float64(r.sessions)
		g := "—"
		if r.after.goroutines >= 0 && r.before.goroutines >= 0 {
			g = fmt.Sprintf("%.2f", float64(r.after.goroutines-r.before.goroutines)/n)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.2f | %s | %.2f | %.2f | %.0f | %.3f | %.3f |\n", labels[i],
			kib(r.after.RSS-r.before.RSS)/n, kib(r.after.PSS-r.before.PSS)/n,
			float64(r.after.FDs-r.before.FDs)/n, g,
			float64(r.after.Procs-r.before.Procs)/n, float64(r.after.Threads-r.before.Threads)/n,
			n/r.openTime.Seconds(),
			float64(report.Median(r.echo))/1e6, float64(report.Quantile(r.echo, 0.99))/1e6)
	}
	if o.flood > 0 {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("%s median %.3f ms, p99 %.3f ms", labels[i],
				float64(report.Median(r.floodEcho))/1e6, float64(report.Quantile(r.floodEcho, 0.99))/1e6)
		}
		fmt.Fprintf(&b, "\nEcho on the same sampled sessions while %d other sessions run `yes` (the harness reads and drops their output): %s.\n",
			o.flood, strings.Join(parts, "; "))
	}
	for i, r := range rs {
		if r.after.mem == nil || r.before.mem == nil {
			continue
		}
		what := "2 s after the logins"
		per := func(k string) string {
			return fmt.Sprintf("%.1f", kib(r.after.mem[k]-r.before.mem[k])/n(r))
		}
		fmt.Fprintf(&b, "\n%s, Go runtime's view per session %s (KiB, from runtime.MemStats): heap in use %s, of which live objects %s; goroutine stacks %s; other runtime structures (MSpan, MCache, GC metadata, OtherSys) %s; total obtained from the OS %s.\n",
			labels[i], what, per("HeapInuse"), per("HeapAlloc"), per("StackInuse"),
			fmt.Sprintf("%.1f", kib(sum(r.after.mem, "MSpanInuse", "MCacheInuse", "GCSys", "OtherSys")-sum(r.before.mem, "MSpanInuse", "MCacheInuse", "GCSys", "OtherSys"))/n(r)),
			per("Sys"))
	}
	b.WriteString("\nTotals (before → after):\n\n| server | RSS MiB | PSS MiB | fds | goroutines | processes | threads |\n|---|---|---|---|---|---|---|\n")
	for i, r := range rs {
		g := "—"
		if r.before.goroutines >= 0 {
			g = fmt.Sprintf("%d → %d", r.before.goroutines, r.after.goroutines)
		}
		fmt.Fprintf(&b, "| %s | %.1f → %.1f | %.1f → %.1f | %d → %d | %s | %d → %d | %d → %d |\n", labels[i],
			kib(r.before.RSS)/1024, kib(r.after.RSS)/1024, kib(r.before.PSS)/1024, kib(r.after.PSS)/1024,
			r.before.FDs, r.after.FDs, g,
			r.before.Procs, r.after.Procs, r.before.Threads, r.after.Threads)
	}
	fmt.Fprintf(&b, "\nEcho: %d keystrokes, %d on each of %d sessions spread over the %d, typed one at a time to `cat >/dev/null` and echoed by the remote pty.\n",
		o.sample*o.keys, o.keys, o.sample, o.sessions)
	return b.String()
}

// cycles runs o.cycles sequential logins and logouts and samples the daemon along the way.
func cycles(ctx context.Context, stdout io.Writer, o *options, pid int, dial func(context.Context) (driver.Session, error), goroutines debug) (string, error) {
	type point struct {
		cycle int
		u     usage
		at    time.Duration
	}
	var points []point
	if err := waitChildren(pid, 0, stepTimeout); err != nil {
		return "", err
	}
	start := time.Now()
	sample := func(cycle int) error {
		u, err := measureUsage(pid, goroutines)
		if err != nil {
			return err
		}
		points = append(points, point{cycle, u, time.Since(start)})
		fmt.Fprintf(stdout, "  cycle %5d: rss %.1f MiB fds %d goroutines %d ptys %d children %d\n",
			cycle, kib(u.RSS)/1024, u.FDs, u.goroutines, u.PTYs, u.children)
		return nil
	}
	if err := sample(0); err != nil {
		return "", err
	}
	every := max(1, o.cycles/10)
	for i := 1; i <= o.cycles; i++ {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err := cycle(ctx, dial); err != nil {
			return "", fmt.Errorf("cycle %d: %w", i, err)
		}
		if i%every == 0 || i == o.cycles {
			if err := sample(i); err != nil {
				return "", err
			}
		}
	}
	elapsed := time.Since(start)
	// The last session's teardown may still be running: let the counts settle, with a deadline.
	first := points[0].u
	deadline := time.Now().Add(stepTimeout)
	var final usage
	for {
		var err error
		if final, err = measureUsage(pid, goroutines); err != nil {
			return "", err
		}
		settled := final.FDs == first.FDs && final.goroutines == first.goroutines && final.PTYs == first.PTYs && final.children == first.children
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#### %d sequential connect/login/logout cycles against rlogind\n\n", o.cycles)
	fmt.Fprintf(&b, "Each cycle: connect, mailbox, TLS, login, the shell answers `echo`, `exit`, the session ends. %d cycles in %v (%.1f ms each).\n\n",
		o.cycles, elapsed.Round(time.Second), float64(elapsed.Milliseconds())/float64(o.cycles))
	b.WriteString("| after cycle | RSS MiB | fds | goroutines | ptys | children | threads |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range points {
		fmt.Fprintf(&b, "| %d | %.1f | %d | %d | %d | %d | %d |\n", p.cycle, kib(p.u.RSS)/1024, p.u.FDs, p.u.goroutines, p.u.PTYs, p.u.children, p.u.Threads)
	}
	fmt.Fprintf(&b, "| settled | %.1f | %d | %d | %d | %d | %d |\n", kib(final.RSS)/1024, final.FDs, final.goroutines, final.PTYs, final.children, final.Threads)
	verdict := "all back to their starting counts"
	if !(final.FDs == first.FDs && final.goroutines == first.goroutines && final.PTYs == first.PTYs && final.children == first.children) {
		verdict = "NOT all back to their starting counts"
	}
	fmt.Fprintf(&b, "\nfds, goroutines, ptys and children: %s.\n", verdict)
	return b.String(), nil
}

func cycle(ctx context.Context, dial func(context.Context) (driver.Session, error)) error {
	lctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	s, err := dial(lctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Send("echo RDY$((40+2))\n"); err != nil {
		return err
	}
	if err := s.Expect("RDY42", stepTimeout); err != nil {
		return err
	}
	if err := s.Send("exit\n"); err != nil {
		return err
	}
	return s.Wait(stepTimeout)
}

// outPath is where the results go: out itself if absolute, else out in the repository.
func outPath(root, out string) string {
	if filepath.IsAbs(out) {
		return out
	}
	return filepath.Join(root, out)
}
