package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/bench/internal/report"
	"github.com/rlogin-go/rlogin/bench/internal/servers"
	"github.com/rlogin-go/rlogin/bench/internal/terminal"
	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// wanOptions are the flags of the WAN section (-wan).
type wanOptions struct {
	rtts  []time.Duration
	rates []int64 // bits per second each way; 0 is no cap
	bytes int64   // bulk output
	keys  int     // echo keystrokes per session
	flood int64   // bytes of the numbered flood read before Ctrl-C
}

func parseWAN(rtts, rates string, bytes int64, keys int, flood int64) (*wanOptions, error) {
	w := &wanOptions{bytes: bytes, keys: keys, flood: flood}
	for _, f := range strings.Split(rtts, ",") {
		ms, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("-rtts: %q is not a number of milliseconds", f)
		}
		w.rtts = append(w.rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	for _, f := range strings.Split(rates, ",") {
		r, err := linkemu.ParseRate(f)
		if err != nil {
			return nil, fmt.Errorf("-rates: %w", err)
		}
		w.rates = append(w.rates, r)
	}
	if bytes < 1 || keys < 1 || flood < 1 {
		return nil, errors.New("-wan-bytes, -wan-keys and -flood must be positive")
	}
	return w, nil
}

// condition is one emulated link: a round trip, and a cap on each direction.
type condition struct {
	rtt  time.Duration
	rate int64
}

func (c condition) profile() linkemu.Profile {
	return linkemu.Profile{Delay: c.rtt / 2, Rate: c.rate}
}

func capName(rate int64) string {
	if rate == 0 {
		return "none"
	}
	return linkemu.FormatRate(rate)
}

// wanSample is what one session measured on one path under one condition.
type wanSample struct {
	setup        time.Duration // from starting the client until the shell answered a command
	echo         time.Duration // median over the session's keystrokes
	mbps         float64       // bulk output, MB/s (10^6 bytes)
	stale        int64         // bytes of the flood that reached the terminal after Ctrl-C
	staleInOrder int64         // of them, those in order with what was shown before, up to the first gap a flush left
	ctrlC        time.Duration // from typing Ctrl-C until the prompt is back
}

// sectionReport is where the results of a section (-wan, -alone) go.
type sectionReport struct {
	root    string
	machine report.Machine
	args    []string
}

// show prints a section's tables, and reports whether they go into a file too (-out).
func (sectionReport) show(stdout io.Writer, tables string, o *options) bool {
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, tables)
	return o.out != ""
}

// wanKey names the samples of one path under one condition.
type wanKey struct {
	path string
	cond condition
}

// runWAN measures every path through one link emulator, a proxy in front of each server, under
// every condition, in interleaved rounds (round, then condition, then path), and writes the
// results.
func runWAN(ctx context.Context, stdout io.Writer, u *servers.User, paths []*path, o *options, rep sectionReport) error {
	for _, p := range paths {
		if p.clientTo == nil {
			return fmt.Errorf("-wan: path %s can not go through the emulator (netkit's in.rlogind wants a privileged source port; bare has no network): use -paths rlogin,ssh", p.name)
		}
	}
	link := linkemu.New(linkemu.Profile{})
	ports := make([]int, len(paths))
	for i, p := range paths {
		proxy, err := link.Listen("127.0.0.1:0", p.server.Addr)
		if err != nil {
			return err
		}
		defer proxy.Close()
		ports[i] = proxy.Addr().(*net.TCPAddr).Port
		if err := trustAt(u, p.knownHosts, ports[i], p.server.HostKeyPub); err != nil {
			return err
		}
	}
	var conds []condition
	for _, rate := range o.wan.rates {
		for _, rtt := range o.wan.rtts {
			conds = append(conds, condition{rtt: rtt, rate: rate})
		}
	}

	results := make(map[wanKey][]wanSample)
	start := time.Now()
	for r := 1; r <= o.rounds; r++ {
		for _, c := range conds {
			link.SetProfile(c.profile())
			for i, p := range paths {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s, err := measureWAN(p.clientTo(ports[i]), o.wan)
				if err != nil {
					return fmt.Errorf("round %d, %v RTT, cap %s, %s: %w", r, c.rtt, capName(c.rate), p.name, err)
				}
				k := wanKey{p.name, c}
				results[k] = append(results[k], s)
				fmt.Fprintf(stdout, "round %d  rtt %4.0f ms  cap %-9s %-7s setup %7.3f s  echo %7.1f ms  output %6.2f MB/s  stale %5.1f KB (%4.1f in order)  Ctrl-C to prompt %6.3f s\n",
					r, ms(c.rtt), capName(c.rate), p.name, s.setup.Seconds(), ms(s.echo), s.mbps, float64(s.stale)/1e3, float64(s.staleInOrder)/1e3, s.ctrlC.Seconds())
			}
		}
	}
	tables := summarizeWAN(paths, conds, results, o, time.Since(start).Round(time.Second))
	if !rep.show(stdout, tables, o) {
		return nil
	}
	out := outPath(rep.root, o.out)
	pngPath := strings.TrimSuffix(out, filepath.Ext(out)) + "-wan.png"
	if err := writePlot(pngPath, func(w io.Writer) error { return plotWAN(w, paths, o.wan, results) }); err != nil {
		return err
	}
	body := fmt.Sprintf("### Run of %s\n\n%s\nCommand: `%s`\n\n%s\n![The medians above as bar charts](%s)\n",
		rep.machine.Date.UTC().Format("2006-01-02"), rep.machine.Markdown(), commandLine(rep.args), tables, filepath.Base(pngPath))
	if err := report.ReplaceSection(out, "wan", body); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwritten to %s and %s\n", o.out, pngPath)
	return nil
}

// trustAt adds the server's host key for 127.0.0.1:port (the proxy) to the user's known_hosts
// file rel, so that the client asks nothing there either.
func trustAt(u *servers.User, rel string, port int, hostKey string) error {
	known, _ := os.ReadFile(filepath.Join(u.Home, rel)) // the server's own line is there already
	known = fmt.Appendf(known, "[127.0.0.1]:%d %s\n", port, hostKey)
	return u.WriteFile(rel, known, 0o600)
}

// measureWAN logs in with cmd and measures, in one session: setup, keystroke echo, bulk output,
// and Ctrl-C during a flood.
func measureWAN(cmd *exec.Cmd, w *wanOptions) (wanSample, error) {
	var s wanSample
	start := time.Now()
	t, err := terminal.Start(cmd, 24, 80)
	if err != nil {
		return s, err
	}
	defer t.Close()
	if _, err := t.Expect(servers.Prompt, loginTimeout); err != nil {
		return s, fmt.Errorf("login: %w", err)
	}
	if err := t.Send("echo RDY$((40+2))\r"); err != nil {
		return s, err
	}
	if _, err := t.Expect("RDY42", loginTimeout); err != nil {
		return s, fmt.Errorf("first command: %w", err)
	}
	s.setup = time.Since(start)
	if _, err := t.Expect(servers.Prompt, stepTimeout); err != nil {
		return s, err
	}

	// Echo, by the remote pty's line discipline (see round for why CAT42 is the sign).
	if err := t.Send("echo CAT$((40+2)); cat >/dev/null\r"); err != nil {
		return s, err
	}
	if _, err := t.Expect("CAT42", stepTimeout); err != nil {
		return s, err
	}
	t.Drain(100*time.Millisecond, 2*time.Second)
	echo := make([]int64, 0, w.keys)
	for k := range w.keys {
		d, err := t.Echo(byte('a'+k%26), stepTimeout)
		if err != nil {
			return s, fmt.Errorf("echo test, keystroke %d: %w", k, err)
		}
		echo = append(echo, int64(d))
	}
	s.echo = time.Duration(report.Median(echo))
	if err := t.Send("\r\x04"); err != nil {
		return s, err
	}
	if _, err := t.Expect(servers.Prompt, stepTimeout); err != nil {
		return s, err
	}

	// Bulk output.
	t0 := time.Now()
	if err := t.Send("cat data.txt; echo END$((40+2))\r"); err != nil {
		return s, err
	}
	if _, err := t.Expect("END42", 10*time.Minute); err != nil {
		return s, fmt.Errorf("output test: %w", err)
	}
	s.mbps = float64(w.bytes) / time.Since(t0).Seconds() / 1e6
	if _, err := t.Expect(servers.Prompt, stepTimeout); err != nil {
		return s, err
	}

	// Ctrl-C during a flood of numbered lines, once the flood has filled every buffer on the
	// way: which of the flood's bytes reach the terminal after the keystroke, and when the
	// prompt is back.
	if err := t.Send(floodCommand + "\r"); err != nil {
		return s, err
	}
	if _, err := t.Expect("1\r\n2\r\n", stepTimeout); err != nil {
		return s, err
	}
	if err := t.Skip(w.flood, 2*time.Minute); err != nil {
		return s, err
	}
	before := []byte(t.Tail())
	t1 := time.Now()
	if err := t.Send("\x03"); err != nil {
		return s, err
	}
	after, err := t.Capture(servers.Prompt, 2*time.Minute)
	if err != nil {
		return s, fmt.Errorf("prompt after Ctrl-C: %w", err)
	}
	s.ctrlC = time.Since(t1)
	c := countStale(before, after)
	s.stale, s.staleInOrder = c.flood, c.inOrder

	return s, logout(t)
}

// logout types exit at the prompt and waits for the client to end.
func logout(t *terminal.Terminal) error {
	if err := t.Send("exit\r"); err != nil {
		return err
	}
	if err := t.Wait(stepTimeout); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) { // a client's status after logout may be anything
			return err
		}
	}
	return nil
}

// wanMetric is one figure of the WAN section, for tables and the chart.
type wanMetric struct {
	title  string // table heading
	short  string // chart panel title, with the RTT after it
	format string // of one value
	value  func(wanSample) float64
}

func wanMetrics() []wanMetric {
	return []wanMetric{
		{"setup: from starting the client to the answer of the first command, s (lower is better)", "setup s", "%.2f",
			func(s wanSample) float64 { return s.setup.Seconds() }},
		{"keystroke echo, ms (median of each session's keystrokes; lower is better)", "echo ms", "%.1f",
			func(s wanSample) float64 { return ms(s.echo) }},
		{"bulk output, MB/s (higher is better)", "output MB/s", "%.2f",
			func(s wanSample) float64 { return s.mbps }},
		{"stale output after Ctrl-C during a flood (`seq`): KB of the flood that reached the terminal after the keystroke (lower is better)", "stale KB", "%.0f",
			func(s wanSample) float64 { return float64(s.stale) / 1e3 }},
		{"stale output after Ctrl-C, of it: KB in order with what was on the screen, up to the first gap the flush left (the rest came after the remote flush; lower is better)", "stale in order KB", "%.0f",
			func(s wanSample) float64 { return float64(s.staleInOrder) / 1e3 }},
		{"Ctrl-C to prompt, s (lower is better)", "Ctrl-C s", "%.3f",
			func(s wanSample) float64 { return s.ctrlC.Seconds() }},
	}
}

// spread is the median, minimum and maximum of one metric over the rounds (of the WAN section
// or of the alone section).
type spread struct{ med, lo, hi float64 }

func spreadOf[S any](ss []S, v func(S) float64) spread {
	if len(ss) == 0 {
		return spread{}
	}
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = v(s)
	}
	sp := spread{med: report.Median(xs), lo: xs[0], hi: xs[0]}
	for _, x := range xs {
		sp.lo, sp.hi = min(sp.lo, x), max(sp.hi, x)
	}
	return sp
}

// summarizeWAN makes the Markdown: a table per metric (a row per path and cap, a column per
// RTT, the median with the range over the rounds), then the targets of issue 14.
func summarizeWAN(paths []*path, conds []condition, results map[wanKey][]wanSample, o *options, took time.Duration) string {
	w := o.wan
	var b strings.Builder
	fmt.Fprintf(&b, "%d interleaved rounds (round, then link condition, then path: each session measures everything once), through one link emulator (`internal/linkemu`, a proxy in front of each server; the RTT is twice its one-way delay, the cap applies to each direction). Echo: %d keystrokes per session; output: `cat` of %.0f MB of printable 80-byte lines; Ctrl-C: typed after %.0f MB of the output of `seq` (numbered lines) has been read; the stale output counts, byte by byte, the flood's bytes read after the keystroke (not the echoed ^C or the prompt). Each cell: the median over the rounds, and in brackets the lowest and highest. The run took %v.\n\n",
		o.rounds, w.keys, float64(w.bytes)/1e6, float64(w.flood)/1e6, took)
	for _, m := range wanMetrics() {
		fmt.Fprintf(&b, "#### %s\n\n| path | cap |", m.title)
		for _, rtt := range w.rtts {
			fmt.Fprintf(&b, " %.0f ms RTT |", ms(rtt))
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(w.rtts)) + "\n")
		for _, rate := range w.rates {
			for _, p := range paths {
				fmt.Fprintf(&b, "| %s | %s |", p.name, capName(rate))
				for _, rtt := range w.rtts {
					sp := spreadOf(results[wanKey{p.name, condition{rtt, rate}}], m.value)
					fmt.Fprintf(&b, " "+m.format+" ("+m.format+"–"+m.format+") |", sp.med, sp.lo, sp.hi)
				}
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	if _, ok := results[wanKey{"rlogin", conds[0]}]; ok {
		if _, ok := results[wanKey{"ssh", conds[0]}]; ok {
			b.WriteString(wanTargets(conds, results))
		}
	}
	return b.String()
}

// wanTargets checks the targets of issue 14 against the medians of this run.
func wanTargets(conds []condition, results map[wanKey][]wanSample) string {
	var b strings.Builder
	b.WriteString("#### Targets (issue 14), from this run's medians\n\n| target | link | figure | met |\n|---|---|---|---|\n")
	row := func(target string, c condition, figure string, ok bool) {
		met := "no"
		if ok {
			met = "yes"
		}
		fmt.Fprintf(&b, "| %s | %.0f ms, cap %s | %s | %s |\n", target, ms(c.rtt), capName(c.rate), figure, met)
	}
	med := func(path string, c condition, v func(wanSample) float64) float64 {
		return spreadOf(results[wanKey{path, c}], v).med
	}
	setup := func(s wanSample) float64 { return s.setup.Seconds() }
	mbps := func(s wanSample) float64 { return s.mbps }
	stale := func(s wanSample) float64 { return float64(s.stale) }
	ctrlC := func(s wanSample) float64 { return s.ctrlC.Seconds() }
	for _, c := range conds {
		ours, theirs := med("rlogin", c, setup), med("ssh", c, setup)
		if c.rtt == 100*time.Millisecond {
			row("setup ≤ 0.3× OpenSSH and ≤ 0.35 s", c, fmt.Sprintf("%.2f s vs %.2f s: %s", ours, theirs, report.Ratio(ours, theirs)),
				ours <= 0.3*theirs && ours <= 0.35)
		}
	}
	for _, c := range conds {
		ours, theirs := med("rlogin", c, mbps), med("ssh", c, mbps)
		if c.rtt >= 50*time.Millisecond {
			row("bulk output ≥ 1.0× OpenSSH", c, fmt.Sprintf("%.2f vs %.2f MB/s: %s", ours, theirs, report.Ratio(ours, theirs)), ours >= theirs)
		}
		if c.rate > 0 {
			capMB := float64(c.rate) / 8 / 1e6
			row("bulk output ≥ 0.9× the cap", c, fmt.Sprintf("%.2f MB/s of %.2f MB/s: %s", ours, capMB, report.Ratio(ours, capMB)), ours >= 0.9*capMB)
		}
	}
	for _, c := range conds {
		v := med("rlogin", c, stale)
		row("stale output after Ctrl-C ≤ 16 KiB", c, fmt.Sprintf("%.1f KiB", v/1024), v <= 16<<10)
	}
	for _, c := range conds {
		v, limit := med("rlogin", c, ctrlC), (c.rtt + 50*time.Millisecond).Seconds()
		row("prompt back ≤ 1 RTT + 50 ms after Ctrl-C", c, fmt.Sprintf("%.3f s (limit %.3f s)", v, limit), v <= limit)
	}
	return b.String()
}

// plotWAN draws the medians: a row of panels per metric, a column per RTT, a bar per path and
// cap.
func plotWAN(out io.Writer, paths []*path, w *wanOptions, results map[wanKey][]wanSample) error {
	var series []string
	for _, rate := range w.rates {
		for _, p := range paths {
			series = append(series, fmt.Sprintf("%s, cap %s", p.name, capName(rate)))
		}
	}
	var panels []report.Panel
	for _, m := range wanMetrics() {
		for _, rtt := range w.rtts {
			pn := report.Panel{Title: fmt.Sprintf("%s, %.0f ms RTT", m.short, ms(rtt))}
			for _, rate := range w.rates {
				for _, p := range paths {
					pn.Values = append(pn.Values, spreadOf(results[wanKey{p.name, condition{rtt, rate}}], m.value).med)
				}
			}
			panels = append(panels, pn)
		}
	}
	return report.BarGrid(out, series, panels, len(w.rtts))
}
