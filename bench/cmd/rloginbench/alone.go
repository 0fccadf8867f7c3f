package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/bench/internal/proc"
	"github.com/rlogin-go/rlogin/bench/internal/report"
	"github.com/rlogin-go/rlogin/bench/internal/servers"
	"github.com/rlogin-go/rlogin/bench/internal/terminal"
)

// The echo test of the suite types into every path's session in turn (A B C D A B C D), one
// keystroke right after the other's echo, which keeps every process and CPU busy and warm. A
// person types into one session, a keystroke every 100-200 ms, and in between everything
// sleeps: the "alone" section (-alone) measures that. One session at a time, logged in for the
// measurement and out after it; the keystrokes spaced by a random gap; in three modes that put
// the echo in different places.

// aloneOptions are the flags of the "alone" section.
type aloneOptions struct {
	keys           int           // keystrokes per session and mode
	gapMin, gapMax time.Duration // the pause before each keystroke, uniform in [gapMin, gapMax]
}

// echoMode is a way the remote side echoes a keystroke.
type echoMode struct {
	name  string
	about string
	// enter, typed at the prompt, sets the mode up and prints marker once it is set up; leave,
	// typed after the keystrokes, ends it so that the prompt comes back.
	enter, marker, leave string
}

func echoModes(keys int) []echoMode {
	return []echoMode{
		{
			name:  "bytes",
			about: "the remote pty echoes (ECHO) while a program reads each byte as it comes (`stty -icanon`, `dd bs=1`)",
			enter: fmt.Sprintf("stty -icanon min 1 time 0; echo BYT$((40+2)); dd bs=1 count=%d of=/dev/null 2>/dev/null; stty icanon\r", keys),
			// dd ends after the keystrokes by itself.
			marker: "BYT42",
		},
		{
			name:   "canonical",
			about:  "the remote pty echoes in canonical mode, the line waits for Enter (`cat >/dev/null`)",
			enter:  "echo CAN$((40+2)); cat >/dev/null\r",
			marker: "CAN42",
			leave:  "\r\x04",
		},
		{
			name:   "readline",
			about:  "bash's readline echoes each key itself, typed at the prompt (the pty's ECHO is off)",
			enter:  "echo RDL$((40+2))\r",
			marker: "RDL42",
			leave:  "\x15", // ^U: readline kills the line typed
		},
	}
}

// aloneSample is what one session measured in one mode.
type aloneSample struct {
	median, p90                    time.Duration
	clientSwitches, serverSwitches float64 // per keystroke, gaps included
}

type aloneKey struct{ path, mode string }

// runAlone measures echo alone: rounds of (mode, then path), each a session of its own.
func runAlone(ctx context.Context, stdout io.Writer, paths []*path, o *options, rep sectionReport) error {
	modes := echoModes(o.alone.keys)
	results := make(map[aloneKey][]aloneSample)
	start := time.Now()
	for r := 1; r <= o.rounds; r++ {
		for _, m := range modes {
			for _, p := range paths {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s, err := measureAlone(p, m, o.alone)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r, m.name, p.name, err)
				}
				k := aloneKey{p.name, m.name}
				results[k] = append(results[k], s)
				fmt.Fprintf(stdout, "round %d  %-9s %-7s echo median %6.3f ms  p90 %6.3f ms  wake-ups/key client %.1f server %.1f\n",
					r, m.name, p.name, ms(s.median), ms(s.p90), s.clientSwitches, s.serverSwitches)
			}
		}
	}
	table := summarizeAlone(paths, modes, results, o, time.Since(start).Round(time.Second))
	if !rep.show(stdout, table, o) {
		return nil
	}
	body := fmt.Sprintf("### Run of %s\n\n%s\nCommand: `%s`\n\n%s",
		rep.machine.Date.UTC().Format("2006-01-02"), rep.machine.Markdown(), commandLine(rep.args), table)
	if err := report.ReplaceSection(outPath(rep.root, o.out), "alone", body); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwritten to %s\n", o.out)
	return nil
}

// measureAlone logs in on p, sets the mode up, types the keystrokes with a person's gaps, and
// logs out.
func measureAlone(p *path, m echoMode, a *aloneOptions) (aloneSample, error) {
	var s aloneSample
	t, err := terminal.Start(p.client(), 24, 80)
	if err != nil {
		return s, err
	}
	defer t.Close()
	if _, err := t.Expect(servers.Prompt, loginTimeout); err != nil {
		return s, fmt.Errorf("login: %w", err)
	}
	if err := t.Send(m.enter); err != nil {
		return s, err
	}
	if _, err := t.Expect(m.marker, stepTimeout); err != nil {
		return s, err
	}
	if m.name == "readline" {
		if _, err := t.Expect(servers.Prompt, stepTimeout); err != nil {
			return s, err
		}
	}
	t.Drain(100*time.Millisecond, 2*time.Second)
	switches := func() (c, sv int64) {
		tab, _ := proc.Snapshot()
		if p.server != nil {
			sv = tab.TreeSwitches(p.server.Pid(), proc.NoTTY)
		}
		return tab.TreeSwitches(t.Pid(), proc.All), sv
	}
	c0, s0 := switches()
	echo := make([]int64, 0, a.keys)
	for k := range a.keys {
		time.Sleep(a.gapMin + rand.N(a.gapMax-a.gapMin+1))
		d, err := t.Echo(byte('a'+k%26), stepTimeout)
		if err != nil {
			return s, fmt.Errorf("keystroke %d: %w", k, err)
		}
		echo = append(echo, int64(d))
	}
	c1, s1 := switches()
	s.median = time.Duration(report.Median(echo))
	s.p90 = time.Duration(report.Quantile(echo, 0.9))
	s.clientSwitches = float64(c1-c0) / float64(a.keys)
	s.serverSwitches = float64(s1-s0) / float64(a.keys)
	if m.leave != "" {
		if err := t.Send(m.leave); err != nil {
			return s, err
		}
	}
	if err := t.Send("echo END$((40+2))\r"); err != nil {
		return s, err
	}
	if _, err := t.Expect("END42", stepTimeout); err != nil {
		return s, fmt.Errorf("after the keystrokes: %w", err)
	}
	return s, logout(t)
}

// summarizeAlone makes the Markdown: for each mode, a row per path with the median over the
// rounds of each session's median and p90, with the lowest and highest round, and the ratios to
// OpenSSH and netkit.
func summarizeAlone(paths []*path, modes []echoMode, results map[aloneKey][]aloneSample, o *options, took time.Duration) string {
	a := o.alone
	var b strings.Builder
	fmt.Fprintf(&b, "%d interleaved rounds (round, then mode, then path); in each, every path logs in alone (no other session open), types %d keystrokes, each after a random pause of %v-%v and each timed from the write to the read that brings it back, and logs out. Each cell: the median over the rounds of the session's median (or 90th percentile), and in brackets the lowest and highest round. Wake-ups/key: context switches of the client's and the server's threads per keystroke (the pauses included). The run took %v.\n\n",
		o.rounds, a.keys, a.gapMin, a.gapMax, took)
	b.WriteString("| mode | path | echo median ms | echo p90 ms | median / OpenSSH | median / netkit | wake-ups/key client, server |\n|---|---|---:|---:|---:|---:|---:|\n")
	med := func(path, mode string, v func(aloneSample) float64) spread {
		return spreadOf(results[aloneKey{path, mode}], v)
	}
	median := func(s aloneSample) float64 { return ms(s.median) }
	p90 := func(s aloneSample) float64 { return ms(s.p90) }
	cw := func(s aloneSample) float64 { return s.clientSwitches }
	sw := func(s aloneSample) float64 { return s.serverSwitches }
	ratio := func(ours float64, other, mode string) string {
		if _, ok := results[aloneKey{other, mode}]; !ok {
			return "—"
		}
		return report.Ratio(ours, med(other, mode, median).med)
	}
	for _, m := range modes {
		for _, p := range paths {
			md, q := med(p.name, m.name, median), med(p.name, m.name, p90)
			wake := "—"
			if p.server != nil {
				wake = fmt.Sprintf("%.1f, %.1f", med(p.name, m.name, cw).med, med(p.name, m.name, sw).med)
			}
			fmt.Fprintf(&b, "| %s | %s | %.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) | %s | %s | %s |\n",
				m.name, p.name, md.med, md.lo, md.hi, q.med, q.lo, q.hi,
				ratio(md.med, "ssh", m.name), ratio(md.med, "netkit", m.name), wake)
		}
	}
	b.WriteString("\nModes:\n\n")
	for _, m := range modes {
		fmt.Fprintf(&b, "- **%s**: %s.\n", m.name, m.about)
	}
	return b.String()
}
