// Command rloginbench compares remote logins over loopback, the way a user's terminal sees them:
// our rlogin -> rlogind (user mode), OpenSSH's ssh -tt -> sshd, netkit's rlogin -> in.rlogind
// (under openbsd-inetd), and a bare local shell in a pty (the floor). Every client runs on a pty
// the harness owns; the harness types into it and reads it.
//
// For each path, in rounds that interleave the paths (A B C D A B C D ...), it measures:
//   - setup: from starting the client until the remote shell answers a command;
//   - keystroke echo: bytes typed one at a time to `cat >/dev/null` on the remote pty, each
//     echoed by the remote pty itself (median and p99 of the round's samples);
//   - output throughput: a file of printable lines cat'ed through the remote pty to the harness;
//   - CPU seconds per GB of that output, client side (the client's processes) and server side
//     (the server's processes without a controlling terminal, so not the shell or cat), from
//     /proc/PID/stat.
//
// It prints a table of the medians over the rounds with the ratios to OpenSSH and to the bare
// pty, and writes it, with the date and a description of the machine, into a marked section of
// docs/benchmarks.md. Run it as root from the repository's bench directory (bench/run.sh does,
// after installing what it needs):
//
//	go run ./cmd/rloginbench [-rounds 5] [-bytes 200000000] [-keys 1000]
//
// It creates a temporary user (-user, default rlbench) that every path logs in as, so that all
// of them run the same shell (bash) with the same dot files, and removes it at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/bench/internal/proc"
	"github.com/rlogin-go/rlogin/bench/internal/report"
	"github.com/rlogin-go/rlogin/bench/internal/servers"
	"github.com/rlogin-go/rlogin/bench/internal/terminal"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "rloginbench: %v\n", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	rounds   int
	bytes    int64
	keys     int
	paths    string
	out      string
	userName string
	keep     bool
	profile  string
	envC     string
	envS     string
	wan      *wanOptions   // nil: the loopback suite
	alone    *aloneOptions // nil: the loopback suite
}

func parseFlags(args []string) (*options, error) {
	var o options
	fs := flag.NewFlagSet("rloginbench", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; each round measures every path once")
	fs.Int64Var(&o.bytes, "bytes", 200_000_000, "bytes of output for the throughput test")
	fs.IntVar(&o.keys, "keys", 1000, "keystrokes per round for the echo test")
	fs.StringVar(&o.paths, "paths", "rlogin,ssh,netkit,bare", "paths to measure, in round order")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file, relative to the repository, whose \"suite\" section gets the results (\"\" for none)")
	fs.StringVar(&o.userName, "user", "rlbench", "name of the temporary user to create")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configurations)")
	fs.StringVar(&o.profile, "cpuprofile", "", "`dir`ectory, relative to the repository, for CPU profiles of rlogind and rlogin (runs their profiling builds, go build -tags profile)")
	fs.StringVar(&o.envC, "rlogin-env", "", "extra environment for our rlogin, comma-separated (experiments: GOMAXPROCS=1, GODEBUG=...)")
	fs.StringVar(&o.envS, "rlogind-env", "", "extra environment for our rlogind, comma-separated")
	wan := fs.Bool("wan", false, "run the WAN section instead: rlogin and ssh through the link emulator at -rtts, -rates")
	rtts := fs.String("rtts", "0,50,100,300", "with -wan: round trips to emulate, in ms, comma-separated")
	rates := fs.String("rates", "0,20mbit", "with -wan: bandwidth caps per direction, comma-separated (0: none; 20mbit, 500kbit, ...)")
	wanBytes := fs.Int64("wan-bytes", 20_000_000, "with -wan: bytes of output for the bulk test")
	wanKeys := fs.Int("wan-keys", 20, "with -wan: keystrokes per session for the echo test")
	flood := fs.Int64("flood", 2_000_000, "with -wan: bytes of the flood (numbered lines) read before Ctrl-C is typed")
	alone := fs.Bool("alone", false, "run the echo-alone section instead: one session at a time, keystrokes spaced as a person types, in three modes")
	aloneKeys := fs.Int("alone-keys", 40, "with -alone: keystrokes per session and mode")
	gap := fs.String("gap", "100ms-200ms", "with -alone: the pause before each keystroke, a random duration in this range")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *alone && *wan {
		return nil, errors.New("-alone and -wan are two sections: run one at a time")
	}
	if *alone {
		lo, hi, ok := strings.Cut(*gap, "-")
		a := &aloneOptions{keys: *aloneKeys}
		var err1, err2 error
		a.gapMin, err1 = time.ParseDuration(lo)
		a.gapMax, err2 = time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a.gapMin < 0 || a.gapMax < a.gapMin {
			return nil, fmt.Errorf("-gap: %q is not a range like 100ms-200ms", *gap)
		}
		if a.keys < 1 {
			return nil, errors.New("-alone-keys must be positive")
		}
		o.alone = a
	}
	if *wan {
		set := make(map[string]bool)
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 3 // a WAN round is long: about 5 minutes with every RTT and cap
		}
		if !set["paths"] {
			o.paths = "rlogin,ssh"
		}
		w, err := parseWAN(*rtts, *rates, *wanBytes, *wanKeys, *flood)
		if err != nil {
			return nil, err
		}
		o.wan = w
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.rounds < 1 || o.keys < 1 || o.bytes < 1 {
		return nil, errors.New("-rounds, -keys and -bytes must be positive")
	}
	return &o, nil
}

// path is one way to a shell that the suite measures.
type path struct {
	name   string // short name: rlogin, ssh, netkit, bare
	label  string // for the table
	server *servers.Server
	client func() *exec.Cmd
	// clientTo is the client to a proxy's port in front of server, and knownHosts the client's
	// known_hosts file (relative to the user's home) that must trust the server's key there; nil
	// for paths that can not go through a proxy.
	clientTo   func(port int) *exec.Cmd
	knownHosts string
}

// sample is what one round measured on one path.
type sample struct {
	setup      time.Duration
	echoMedian time.Duration
	echoP99    time.Duration
	mbps       float64 // output throughput, MB/s (10^6 bytes)
	clientCPU  time.Duration
	serverCPU  time.Duration
	// Context switches per keystroke during the echo test, client and server side: how many
	// times their threads slept and were woken up.
	clientSwitches, serverSwitches float64
}

const (
	loginTimeout = 30 * time.Second
	stepTimeout  = 30 * time.Second
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
		return errors.New("run me as root: I create a temporary user and start sshd and in.rlogind (see bench/README.md)")
	}
	if err := checkTools(o.paths); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := servers.ModuleRoot()
	if err != nil {
		return err
	}
	machine := report.Describe()
	dir, err := os.MkdirTemp("", "rloginbench-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the user's home lies below
		return err
	}
	if o.keep {
		fmt.Fprintf(stdout, "temporary directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	fmt.Fprintln(stdout, "building rlogin and rlogind ...")
	var tags []string
	if o.profile != "" {
		tags = []string{"profile"} // the commands' profiling hooks: cmd/rlogin/profile.go, cmd/rlogind/profile.go
	}
	bins, err := servers.Build(root, dir, tags, "cmd/rlogin", "cmd/rlogind")
	if err != nil {
		return err
	}
	rloginBin, rlogindBin := bins["rlogin"], bins["rlogind"]

	u, err := servers.NewUser(dir, o.userName, "/bin/bash")
	if err != nil {
		return err
	}
	defer u.Close()
	fmt.Fprintf(stdout, "temporary user %s (uid %d), home %s, shell %s\n", u.Name, u.UID, u.Home, u.Shell)

	dataBytes := o.bytes
	if o.wan != nil {
		dataBytes = o.wan.bytes
	}
	if o.alone != nil {
		dataBytes = 1 << 20 // only the warm-up reads it
	}
	data := filepath.Join(u.Home, "data.txt")
	if err := writeData(data, dataBytes); err != nil {
		return err
	}
	if err := u.ChownAll(data); err != nil {
		return err
	}

	var profEnv, clientEnv []string
	if o.envC != "" {
		clientEnv = strings.Split(o.envC, ",")
	}
	if o.envS != "" {
		profEnv = strings.Split(o.envS, ",")
	}
	if o.profile != "" {
		abs := outPath(root, o.profile) // relative to the repository, as -out
		if err := os.MkdirAll(abs, 0o777); err != nil {
			return err
		}
		_ = os.Chmod(abs, 0o777) // the user's processes write there
		profEnv = append(profEnv, "RLOGIND_CPUPROFILE="+filepath.Join(abs, "rlogind.pprof"))
		clientEnv = append(clientEnv, "RLOGIN_CPUPROFILE="+filepath.Join(abs, "rlogin"))
	}

	var paths []*path
	for _, name := range strings.Split(o.paths, ",") {
		p := &path{name: name}
		kind, variant, _ := strings.Cut(name, ":")
		switch kind {
		case "rlogin":
			// "rlogin:NAME=value+NAME=value" is a variant with more environment for both ends,
			// for A/B experiments within one run (GOMAXPROCS=1, GODEBUG=...); "s.NAME=value"
			// goes to rlogind only, "c.NAME=value" to rlogin only.
			var extra, extraS, extraC []string
			if variant != "" {
				extra = strings.Split(variant, "+")
			}
			for _, kv := range extra {
				switch {
				case strings.HasPrefix(kv, "s."):
					extraS = append(extraS, kv[2:])
				case strings.HasPrefix(kv, "c."):
					extraC = append(extraC, kv[2:])
				default:
					extraS, extraC = append(extraS, kv), append(extraC, kv)
				}
			}
			s, err := servers.StartRlogind(ctx, u, rlogindBin, dir, nil, append(slices.Clone(profEnv), extraS...))
			if err != nil {
				return err
			}
			defer s.Close()
			p.label, p.server = "our rlogin → rlogind (TLS 1.3)", s
			if variant != "" {
				p.label += " with " + strings.Join(extra, " ")
			}
			p.clientTo = func(port int) *exec.Cmd {
				cmd := servers.RloginClientTo(u, rloginBin, port)
				cmd.Env = append(append(cmd.Env, clientEnv...), extraC...)
				return cmd
			}
			p.client = func() *exec.Cmd { return p.clientTo(s.Port) }
			p.knownHosts = ".rlogin/known_hosts"
		case "ssh":
			s, err := servers.StartSshd(ctx, u, dir)
			if err != nil {
				return err
			}
			defer s.Close()
			p.label, p.server = "OpenSSH ssh -tt → sshd", s
			p.client = func() *exec.Cmd { return s.SSHClient(u) }
			p.clientTo = func(port int) *exec.Cmd { return servers.SSHClientTo(u, port) }
			p.knownHosts = ".ssh/known_hosts"
		case "netkit":
			s, err := servers.StartInetd(ctx, u, dir)
			if err != nil {
				return err
			}
			defer s.Close()
			p.label, p.server = "netkit rlogin → in.rlogind (inetd)", s
			p.client = func() *exec.Cmd { return s.NetkitClient(u) }
		case "bare":
			p.label = "bare local shell in a pty"
			p.client = u.LoginShell
		default:
			return fmt.Errorf("unknown path %q (want rlogin, ssh, netkit, bare)", name)
		}
		paths = append(paths, p)
	}

	if err := authorizeSSHKey(u); err != nil {
		return err
	}

	// One unmeasured login per path first: binaries, libraries and the data file get into the
	// page cache, and every server has started once.
	for _, p := range paths {
		if err := warmUp(ctx, p, o); err != nil {
			return fmt.Errorf("%s: warm-up: %w", p.name, err)
		}
	}
	if o.wan != nil {
		return runWAN(ctx, stdout, u, paths, o, sectionReport{root: root, machine: machine, args: args})
	}
	if o.alone != nil {
		return runAlone(ctx, stdout, paths, o, sectionReport{root: root, machine: machine, args: args})
	}
	results := make(map[string][]sample)
	for r := 1; r <= o.rounds; r++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ss, err := round(ctx, paths, o)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		for i, p := range paths {
			s := ss[i]
			results[p.name] = append(results[p.name], s)
			fmt.Fprintf(stdout, "round %d %-7s setup %7.1f ms  echo median %6.3f ms p99 %6.3f ms (wake-ups/key client %.1f server %.1f)  output %6.1f MB/s  CPU client %5.2f s/GB server %5.2f s/GB\n",
				r, p.name, ms(s.setup), ms(s.echoMedian), ms(s.echoP99), s.clientSwitches, s.serverSwitches, s.mbps,
				perGB(s.clientCPU, o.bytes), perGB(s.serverCPU, o.bytes))
		}
	}

	st := allMedians(paths, results, o)
	table := summarize(paths, st, o)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, table)
	if o.out != "" {
		// The chart goes beside the Markdown file: docs/benchmarks.md -> docs/benchmarks-suite.png.
		out := outPath(root, o.out)
		pngPath := strings.TrimSuffix(out, filepath.Ext(out)) + "-suite.png"
		if err := writePlot(pngPath, func(w io.Writer) error { return plot(w, paths, st) }); err != nil {
			return err
		}
		body := fmt.Sprintf("### Run of %s\n\n%s\nCommand: `%s`\n\n%s\n![The medians above as bar charts](%s)\n",
			machine.Date.UTC().Format("2006-01-02"), machine.Markdown(), commandLine(args), table, filepath.Base(pngPath))
		if err := report.ReplaceSection(out, "suite", body); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten to %s and %s\n", o.out, pngPath)
	}
	return nil
}

// writePlot writes a chart, drawn by draw, to a PNG file at path.
func writePlot(path string, draw func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := draw(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

// checkTools reports the programs that the paths (the -paths flag) need and that are missing,
// with the Debian packages that hold them.
func checkTools(paths string) error {
	need := map[string]string{"/usr/sbin/useradd": "passwd"} // the temporary user, for every path
	for _, name := range strings.Split(paths, ",") {
		kind, _, _ := strings.Cut(name, ":")
		switch kind {
		case "ssh":
			need["/usr/sbin/sshd"] = "openssh-server"
			need["/usr/bin/ssh"] = "openssh-client"
			need["/usr/bin/ssh-keygen"] = "openssh-client"
		case "netkit":
			need["/usr/sbin/in.rlogind"] = "rsh-server"
			need["/usr/bin/netkit-rlogin"] = "rsh-client"
			need["/usr/sbin/inetd"] = "openbsd-inetd"
		}
	}
	var missing, pkgs []string
	for bin, pkg := range need {
		if _, err := os.Stat(bin); err != nil {
			missing = append(missing, bin)
			if !slices.Contains(pkgs, pkg) {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		slices.Sort(pkgs)
		return fmt.Errorf("missing %s: install with apt-get install %s (bench/run.sh does)", strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	if _, err := exec.LookPath("go"); err != nil {
		return errors.New("the go command is not in PATH: it builds rlogin and rlogind")
	}
	return nil
}

// writeData writes n bytes of printable lines (80 bytes each, newline included; lowercase
// letters only, so the end marker cannot occur in them).
func writeData(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	const lineLen = 80
	block := make([]byte, 0, 1<<20)
	for i := 0; len(block)+lineLen <= cap(block); i++ {
		for j := range lineLen - 1 {
			block = append(block, byte('a'+(i+j)%26))
		}
		block = append(block, '\n')
	}
	for n > 0 {
		b := block[:min(int64(len(block)), n)]
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		n -= int64(len(b))
	}
	return f.Close()
}

// authorizeSSHKey lists the user's ~/.ssh/id_ed25519 (made for sshd) in rlogind's
// ~/.rlogin/authorized_keys too, as a user who uses both has it. rlogin offers that key first;
// without this line rlogind refused it and rlogin tried its own key on a second connection,
// which cost the measured setup a connection and its round trips.
func authorizeSSHKey(u *servers.User) error {
	pub, err := os.ReadFile(filepath.Join(u.Home, ".ssh", "id_ed25519.pub"))
	if errors.Is(err, os.ErrNotExist) {
		return nil // no ssh path: rlogin offers its own key, which rlogind authorized
	}
	if err != nil {
		return err
	}
	rel := filepath.Join(".rlogin", "authorized_keys")
	authorized, err := os.ReadFile(filepath.Join(u.Home, rel))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return u.WriteFile(rel, append(authorized, pub...), 0o600)
}

// warmUp logs in once and out again.
func warmUp(ctx context.Context, p *path, o *options) error {
	t, err := terminal.Start(p.client(), 24, 80)
	if err != nil {
		return err
	}
	defer t.Close()
	if _, err := t.Expect(servers.Prompt, loginTimeout); err != nil {
		return err
	}
	if err := t.Send("cat data.txt >/dev/null; exit\r"); err != nil {
		return err
	}
	return t.Wait(stepTimeout)
}

// session is one path's login in a round.
type session struct {
	p    *path
	t    *terminal.Terminal
	echo []int64 // ns
}

// round measures every path once. Each phase runs on every path before the next phase starts,
// and the echo test interleaves keystroke by keystroke (A B C D A B C D ...), so that noise on the
// shared machine hits all paths alike.
func round(ctx context.Context, paths []*path, o *options) ([]sample, error) {
	samples := make([]sample, len(paths))
	sessions := make([]*session, len(paths))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				_ = s.t.Close()
			}
		}
	}()
	// Setup: from starting the client until the shell answers a command typed at its prompt.
	for i, p := range paths {
		start := time.Now()
		t, err := terminal.Start(p.client(), 24, 80)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		sessions[i] = &session{p: p, t: t, echo: make([]int64, 0, o.keys)}
		if _, err := t.Expect(servers.Prompt, loginTimeout); err != nil {
			return nil, fmt.Errorf("%s: login: %w", p.name, err)
		}
		if err := t.Send("echo RDY$((40+2))\r"); err != nil {
			return nil, err
		}
		if _, err := t.Expect("RDY42", loginTimeout); err != nil {
			return nil, fmt.Errorf("%s: first command: %w", p.name, err)
		}
		samples[i].setup = time.Since(start)
		if _, err := t.Expect(servers.Prompt, stepTimeout); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}

	// Keystroke echo. The shell prints CAT42 only after it has put the terminal back into
	// canonical mode with echo (bash's readline turns echo off while it edits a line), so from
	// then on the remote pty echoes every byte as it arrives, whether or not cat reads yet.
	for _, s := range sessions {
		if err := s.t.Send("echo CAT$((40+2)); cat >/dev/null\r"); err != nil {
			return nil, err
		}
		if _, err := s.t.Expect("CAT42", stepTimeout); err != nil {
			return nil, fmt.Errorf("%s: %w", s.p.name, err)
		}
		s.t.Drain(100*time.Millisecond, 2*time.Second)
	}
	switches := func() (c, sv []int64) {
		t, _ := proc.Snapshot()
		for _, s := range sessions {
			var server int64
			if s.p.server != nil {
				server = t.TreeSwitches(s.p.server.Pid(), proc.NoTTY)
			}
			c, sv = append(c, t.TreeSwitches(s.t.Pid(), proc.All)), append(sv, server)
		}
		return c, sv
	}
	c0, s0 := switches()
	for k := range o.keys {
		for _, s := range sessions {
			d, err := s.t.Echo(byte('a'+k%26), stepTimeout)
			if err != nil {
				return nil, fmt.Errorf("%s: echo test, keystroke %d: %w", s.p.name, k, err)
			}
			s.echo = append(s.echo, int64(d))
		}
	}
	c1, s1 := switches()
	for i, s := range sessions {
		samples[i].clientSwitches = float64(c1[i]-c0[i]) / float64(o.keys)
		samples[i].serverSwitches = float64(s1[i]-s0[i]) / float64(o.keys)
		samples[i].echoMedian = time.Duration(report.Median(s.echo))
		samples[i].echoP99 = time.Duration(report.Quantile(s.echo, 0.99))
		if err := s.t.Send("\r\x04"); err != nil { // end the line, then end of file for cat
			return nil, err
		}
		if _, err := s.t.Expect(servers.Prompt, stepTimeout); err != nil {
			return nil, fmt.Errorf("%s: %w", s.p.name, err)
		}
	}

	// Output throughput and CPU, one path at a time while the others idle at their prompts.
	for i, s := range sessions {
		before, err := proc.Snapshot()
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := s.t.Send("cat data.txt; echo END$((40+2))\r"); err != nil {
			return nil, err
		}
		if _, err := s.t.Expect("END42", 10*time.Minute); err != nil {
			return nil, fmt.Errorf("%s: output test: %w", s.p.name, err)
		}
		elapsed := time.Since(t0)
		after, err := proc.Snapshot()
		if err != nil {
			return nil, err
		}
		samples[i].mbps = float64(o.bytes) / elapsed.Seconds() / 1e6
		if s.p.server != nil {
			samples[i].clientCPU = proc.CPUDelta(before, after, s.t.Pid(), proc.All)
			samples[i].serverCPU = proc.CPUDelta(before, after, s.p.server.Pid(), proc.NoTTY)
		}
		if _, err := s.t.Expect(servers.Prompt, stepTimeout); err != nil {
			return nil, fmt.Errorf("%s: %w", s.p.name, err)
		}
	}

	for _, s := range sessions {
		if err := s.t.Send("exit\r"); err != nil {
			return nil, err
		}
	}
	for _, s := range sessions {
		if err := s.t.Wait(stepTimeout); err != nil && s.p.server == nil {
			// The bare shell's exit status is its own; a client's may be anything after logout.
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return nil, fmt.Errorf("%s: %w", s.p.name, err)
			}
		}
	}
	return samples, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perGB is CPU seconds per 10^9 bytes moved.
func perGB(cpu time.Duration, bytes int64) float64 { return cpu.Seconds() / (float64(bytes) / 1e9) }

func commandLine(args []string) string {
	return strings.TrimSpace("cd bench && go run ./cmd/rloginbench " + strings.Join(args, " "))
}

// outPath is where the results go: out itself if absolute, else out in the repository.
func outPath(root, out string) string {
	if filepath.IsAbs(out) {
		return out
	}
	return filepath.Join(root, out)
}
