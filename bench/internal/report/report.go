// Package report holds what the benchmark commands share for their output: statistics over
// samples, the machine description, and the replacement of a marked section of a Markdown file.
//
// Typical usage:
//
//	med := report.Median(samples)
//	err := report.ReplaceSection("docs/benchmarks.md", "suite", markdown)
package report

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Quantile is the q-quantile (0..1) of xs by the nearest-rank method; 0 for no samples.
func Quantile[T ~int64 | ~float64](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1 // nearest rank, 1-based, made 0-based
	return s[min(max(i, 0), len(s)-1)]
}

// Median is the 0.5-quantile of xs.
func Median[T ~int64 | ~float64](xs []T) T { return Quantile(xs, 0.5) }

// Machine describes the machine the benchmarks ran on.
type Machine struct {
	Date    time.Time
	CPUs    int
	Model   string
	Kernel  string
	Go      string
	OpenSSH string
	Netkit  string
	Memory  string
	Load    string // load averages when the run started
}

// Describe gathers the machine's description.
func Describe() Machine {
	m := Machine{Date: time.Now(), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out)) // the toolchain that built the binaries
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		m.OpenSSH = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Version}; ", "rsh-server", "rsh-client", "openbsd-inetd").Output(); err == nil {
		m.Netkit = strings.TrimSuffix(strings.TrimSpace(string(out)), ";")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			f := strings.Fields(string(line))
			if len(f) >= 2 {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Markdown is the description as a Markdown list.
func (m Machine) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- Date: %s\n", m.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- CPU: %d × %s (nproc %d); memory %s\n", m.CPUs, m.Model, m.CPUs, m.Memory)
	fmt.Fprintf(&b, "- Kernel: %s\n", m.Kernel)
	fmt.Fprintf(&b, "- Go: %s\n", m.Go)
	fmt.Fprintf(&b, "- OpenSSH: %s\n", m.OpenSSH)
	if m.Netkit != "" {
		fmt.Fprintf(&b, "- netkit: %s\n", m.Netkit)
	}
	fmt.Fprintf(&b, "- Load average when the run started: %s\n", m.Load)
	return b.String()
}

// ReplaceSection writes body into the Markdown file path between the lines
// "<!-- BEGIN name -->" and "<!-- END name -->", replacing what was there; without those lines
// it appends them with body. The rest of the file is kept.
func ReplaceSection(path, name, body string) error {
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("report: %w", err)
	}
	text := string(old)
	section := begin + body + end
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + section + text[j+len(end):]
	default:
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text += "\n"
		}
		text += section
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// Ratio formats a/b as "0.42×", or "—" when either is unknown.
func Ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
