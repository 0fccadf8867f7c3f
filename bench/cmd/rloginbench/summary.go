package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/rlogin-go/rlogin/bench/internal/report"
)

// stats are the medians over the rounds of one path's samples.
type stats struct {
	setup, echoMedian, echoP99 float64 // ms
	mbps                       float64
	clientCPU, serverCPU       float64 // s/GB; 0 when not applicable
	clientWake, serverWake     float64 // context switches per keystroke
	rounds                     int
}

func medians(ss []sample, bytes int64) stats {
	var setup, em, e99, mbps, cc, sc, cw, sw []float64
	for _, s := range ss {
		setup = append(setup, ms(s.setup))
		em = append(em, ms(s.echoMedian))
		e99 = append(e99, ms(s.echoP99))
		mbps = append(mbps, s.mbps)
		cc = append(cc, perGB(s.clientCPU, bytes))
		sc = append(sc, perGB(s.serverCPU, bytes))
		cw = append(cw, s.clientSwitches)
		sw = append(sw, s.serverSwitches)
	}
	return stats{
		setup: report.Median(setup), echoMedian: report.Median(em), echoP99: report.Median(e99),
		mbps: report.Median(mbps), clientCPU: report.Median(cc), serverCPU: report.Median(sc),
		clientWake: report.Median(cw), serverWake: report.Median(sw),
		rounds: len(ss),
	}
}

// allMedians returns each path's medians, by path name.
func allMedians(paths []*path, results map[string][]sample, o *options) map[string]stats {
	st := make(map[string]stats)
	for _, p := range paths {
		st[p.name] = medians(results[p.name], o.bytes)
	}
	return st
}

// plot draws the medians as bar charts, one panel per figure, and writes the PNG to w.
func plot(w io.Writer, paths []*path, st map[string]stats) error {
	var series []string
	panels := []report.Panel{
		{Title: "setup ms (lower)"},
		{Title: "echo median ms (lower)"},
		{Title: "output MB/s (higher)"},
		{Title: "client CPU s/GB (lower)"},
		{Title: "server CPU s/GB (lower)"},
	}
	for _, p := range paths {
		s := st[p.name]
		series = append(series, strings.ReplaceAll(p.label, "→", "->")) // the font is ASCII
		cc, sc := s.clientCPU, s.serverCPU
		if p.server == nil {
			cc, sc = math.NaN(), math.NaN()
		}
		for i, v := range []float64{s.setup, s.echoMedian, s.mbps, cc, sc} {
			panels[i].Values = append(panels[i].Values, v)
		}
	}
	return report.BarChart(w, series, panels)
}

// summarize makes the Markdown tables from the medians: the medians, the ratios, and the
// targets.
func summarize(paths []*path, st map[string]stats, o *options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Medians over %d interleaved rounds; echo: %d keystrokes per round (median and p99 of each round, then the median over rounds); output: %.0f MB of printable 80-byte lines (`cat` of a file) per round; wake-ups/key: context switches of the client's and the server's threads per keystroke during the echo test.\n\n",
		o.rounds, o.keys, float64(o.bytes)/1e6)
	b.WriteString("| path | setup ms | echo median ms | echo p99 ms | output MB/s | client CPU s/GB | server CPU s/GB | wake-ups/key client, server |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range paths {
		s := st[p.name]
		cpu := func(v float64) string {
			if p.server == nil {
				return "—"
			}
			return fmt.Sprintf("%.2f", v)
		}
		wake := "—"
		if p.server != nil {
			wake = fmt.Sprintf("%.1f, %.1f", s.clientWake, s.serverWake)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.3f | %.3f | %.1f | %s | %s | %s |\n",
			p.label, s.setup, s.echoMedian, s.echoP99, s.mbps, cpu(s.clientCPU), cpu(s.serverCPU), wake)
	}

	ssh, haveSSH := st["ssh"]
	bare, haveBare := st["bare"]
	b.WriteString("\nRatios (lower is better for time and CPU, higher for throughput):\n\n")
	b.WriteString("| path | setup / ssh | echo / ssh | echo / bare | output / ssh | output / bare | client CPU / ssh | server CPU / ssh |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range paths {
		s := st[p.name]
		r := func(a, base float64, have bool) string {
			if !have {
				return "—"
			}
			return report.Ratio(a, base)
		}
		cpu := func(a, base float64) string {
			if p.server == nil {
				return "—"
			}
			return r(a, base, haveSSH)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p.name,
			r(s.setup, ssh.setup, haveSSH), r(s.echoMedian, ssh.echoMedian, haveSSH), r(s.echoMedian, bare.echoMedian, haveBare),
			r(s.mbps, ssh.mbps, haveSSH), r(s.mbps, bare.mbps, haveBare),
			cpu(s.clientCPU, ssh.clientCPU), cpu(s.serverCPU, ssh.serverCPU))
	}

	ours, haveOurs := st["rlogin"]
	netkit, haveNetkit := st["netkit"]
	if haveOurs && haveSSH {
		b.WriteString("\nTargets (issue 5), from this run:\n\n")
		b.WriteString("| target | figure | met |\n|---|---|---|\n")
		check := func(name, figure string, ok bool) {
			met := "no"
			if ok {
				met = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, figure, met)
		}
		check("output ≥ 1.5× OpenSSH", fmt.Sprintf("%.2f×", ours.mbps/ssh.mbps), ours.mbps >= 1.5*ssh.mbps)
		if haveBare {
			check("output ≥ 0.85× bare pty", fmt.Sprintf("%.2f×", ours.mbps/bare.mbps), ours.mbps >= 0.85*bare.mbps)
		}
		check("echo median ≤ 0.5× OpenSSH", fmt.Sprintf("%.2f×", ours.echoMedian/ssh.echoMedian), ours.echoMedian <= 0.5*ssh.echoMedian)
		if haveNetkit {
			check("echo median ≤ netkit rlogin", fmt.Sprintf("%.3f ms vs %.3f ms", ours.echoMedian, netkit.echoMedian), ours.echoMedian <= netkit.echoMedian)
		}
		check("setup ≤ 0.15× OpenSSH", fmt.Sprintf("%.2f×", ours.setup/ssh.setup), ours.setup <= 0.15*ssh.setup)
		check("client CPU/GB ≤ OpenSSH", fmt.Sprintf("%.2f vs %.2f s/GB", ours.clientCPU, ssh.clientCPU), ours.clientCPU <= ssh.clientCPU)
		check("server CPU/GB ≤ OpenSSH", fmt.Sprintf("%.2f vs %.2f s/GB", ours.serverCPU, ssh.serverCPU), ours.serverCPU <= ssh.serverCPU)
	}
	return b.String()
}
