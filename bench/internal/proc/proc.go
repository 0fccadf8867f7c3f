// Package proc reads what the benchmarks measure about processes from Linux's /proc: CPU time,
// memory, open descriptors, threads, and process trees.
//
// Typical usage:
//
//	before, _ := proc.Snapshot()
//	... work ...
//	after, _ := proc.Snapshot()
//	cpu := after.TreeCPU(daemonPid, proc.NoTTY) - before.TreeCPU(daemonPid, proc.NoTTY)
package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ticksPerSecond is USER_HZ, the unit of the CPU times in /proc/PID/stat; it is 100 on every
// Linux architecture Go supports.
const ticksPerSecond = 100

// Stat is the part of /proc/PID/stat the benchmarks use.
type Stat struct {
	Pid     int
	Comm    string
	PPid    int
	Session int
	TTY     int           // tty_nr: the controlling terminal's device number, 0 if none
	CPU     time.Duration // utime + stime of the process itself
	Threads int
	RSS     int64 // bytes
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("proc: %w", err)
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (Stat, error) {
	// "pid (comm) state ppid pgrp session tty_nr ..."; comm may hold anything, so split after
	// the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("proc: malformed stat of pid %d", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("proc: short stat of pid %d", pid)
	}
	num := func(field int) int64 {
		v, _ := strconv.ParseInt(f[field-3], 10, 64)
		return v
	}
	return Stat{
		Pid:     pid,
		Comm:    string(b[open+1 : end]),
		PPid:    int(num(4)),
		Session: int(num(6)),
		TTY:     int(num(7)),
		CPU:     time.Duration(num(14)+num(15)) * time.Second / ticksPerSecond,
		Threads: int(num(20)),
		RSS:     num(24) * int64(os.Getpagesize()),
	}, nil
}

// Table is every process's Stat at one moment.
type Table map[int]Stat

// Snapshot reads the stat of every process.
func Snapshot() (Table, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	t := make(Table, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		t[pid] = st
	}
	return t, nil
}

// Filter selects processes of a tree.
type Filter func(Stat) bool

// All selects every process.
func All(Stat) bool { return true }

// NoTTY selects the processes without a controlling terminal: of a daemon's tree, the daemon's
// own processes rather than the login sessions it started (which run on their ptys).
func NoTTY(s Stat) bool { return s.TTY == 0 }

// Tree returns root and its descendants that keep, in no particular order.
func (t Table) Tree(root int, keep Filter) []Stat {
	children := make(map[int][]int)
	for pid, st := range t {
		children[st.PPid] = append(children[st.PPid], pid)
	}
	var out []Stat
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, ok := t[pid]
		if !ok {
			continue
		}
		if keep(st) {
			out = append(out, st)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// TreeCPU is the CPU time used so far by the live processes of root's tree that keep.
func (t Table) TreeCPU(root int, keep Filter) time.Duration {
	var d time.Duration
	for _, st := range t.Tree(root, keep) {
		d += st.CPU
	}
	return d
}

// CPUDelta is the CPU time root's tree (the processes that keep, in after) used between two
// snapshots. A process that did not exist in before counts from zero.
func CPUDelta(before, after Table, root int, keep Filter) time.Duration {
	var d time.Duration
	for _, st := range after.Tree(root, keep) {
		if b, ok := before[st.Pid]; ok && b.Comm == st.Comm {
			d += st.CPU - b.CPU
		} else {
			d += st.CPU
		}
	}
	return d
}

// Children lists the pids whose parent is pid.
func (t Table) Children(pid int) []int {
	var out []int
	for p, st := range t {
		if st.PPid == pid {
			out = append(out, p)
		}
	}
	return out
}

// PSS reads the proportional set size of pid (/proc/PID/smaps_rollup): its resident memory with
// each shared page divided among the processes sharing it, so the PSS of several processes adds
// up to the memory they use together.
func PSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proc: smaps_rollup of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("proc: no Pss in smaps_rollup of %d", pid)
}

// FDs counts pid's open file descriptors, and among them the pty masters (/dev/ptmx).
func FDs(pid int) (total, ptys int, err error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("proc: %w", err)
	}
	for _, e := range ents {
		total++
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && (target == "/dev/ptmx" || strings.HasPrefix(target, "/dev/pts/ptmx")) {
			ptys++
		}
	}
	return total, ptys, nil
}

// Usage sums what a set of processes uses.
type Usage struct {
	Procs   int
	RSS     int64 // sum of the resident set sizes (shared pages counted in each process)
	PSS     int64 // sum of the proportional set sizes (shared pages divided among their users)
	FDs     int
	PTYs    int // open pty masters
	Threads int
}

// TreeUsage sums the usage of root's tree, the processes that keep.
func (t Table) TreeUsage(root int, keep Filter) Usage {
	var u Usage
	for _, st := range t.Tree(root, keep) {
		u.Procs++
		u.RSS += st.RSS
		u.Threads += st.Threads
		if pss, err := PSS(st.Pid); err == nil {
			u.PSS += pss
		}
		if n, p, err := FDs(st.Pid); err == nil {
			u.FDs += n
			u.PTYs += p
		}
	}
	return u
}

// Switches counts the context switches (voluntary and involuntary) of every thread of pid so
// far: each voluntary one is a sleep, so their growth over a test is the number of wake-ups it
// cost the process.
func Switches(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// TreeSwitches is Switches summed over root's tree, the processes that keep.
func (t Table) TreeSwitches(root int, keep Filter) int64 {
	var n int64
	for _, st := range t.Tree(root, keep) {
		n += Switches(st.Pid)
	}
	return n
}
