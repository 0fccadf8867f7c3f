// Package servers sets up what the benchmarks log in to, on loopback: a temporary user for the
// logins, our rlogind in user mode, OpenSSH's sshd with a temporary configuration, and netkit's
// in.rlogind under openbsd-inetd; and the client command lines for each of them.
//
// Everything lives under one temporary directory and is removed by the Close methods; the user is
// created with useradd and removed with userdel. It needs root (to create the user, and because
// sshd and in.rlogind need it).
//
// Typical usage:
//
//	u, err := servers.NewUser(dir, "rlbench", "/bin/bash")
//	...
//	defer u.Close()
//	d, err := servers.StartRlogind(ctx, u, bin, "")
//	...
//	defer d.Close()
//	cmd := d.Client(clientBin) // rlogin -p PORT 127.0.0.1, run as the user
package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// User is a temporary account that every benchmarked path logs in as, so that all of them run
// the same shell with the same dot files in the same home directory.
type User struct {
	Name  string
	Home  string
	Shell string
	UID   int
	GID   int
}

// Prompt is the shell prompt the user's dot files set: the harness waits for it.
const Prompt = "bench$ "

// NewUser creates the account name (useradd; it must not exist) with its home in dir/home and
// shell as its login shell. The account gets the password "*": no password works, but the
// account is not locked (sshd refuses locked accounts even for key authentication). Its dot files
// set the prompt to Prompt and keep no history. Close removes the account.
func NewUser(dir, name, shell string) (*User, error) {
	if _, err := user.Lookup(name); err == nil {
		return nil, fmt.Errorf("servers: user %s exists already (left over from an interrupted run? remove it with: userdel %s), or choose another name", name, name)
	}
	home := filepath.Join(dir, "home")
	out, err := exec.Command("useradd", "-M", "-U", "-d", home, "-s", shell, "-p", "*", "-c", "rlogin benchmark (temporary)", name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("servers: useradd: %w: %s", err, out)
	}
	u := &User{Name: name, Home: home, Shell: shell}
	pw, err := user.Lookup(name)
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("servers: %w", err)
	}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(pw.Gid)
	dotfiles := map[string]string{
		// bash as a login shell reads .bash_profile; sh (dash) reads .profile.
		".bash_profile": "PS1='bench\\$ '\nunset HISTFILE\n",
		".profile":      "PS1='bench$ '\n",
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		u.Close()
		return nil, fmt.Errorf("servers: %w", err)
	}
	for name, text := range dotfiles {
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o644); err != nil {
			u.Close()
			return nil, fmt.Errorf("servers: %w", err)
		}
	}
	if err := u.ChownAll(home); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// ChownAll gives path and everything under it to the user.
func (u *User) ChownAll(path string) error {
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.UID, u.GID)
	})
	if err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	return nil
}

// WriteFile writes a file in the user's home (relative path), owned by the user.
func (u *User) WriteFile(rel string, data []byte, perm os.FileMode) error {
	p := filepath.Join(u.Home, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	for d := filepath.Dir(p); d != u.Home && strings.HasPrefix(d, u.Home); d = filepath.Dir(d) {
		_ = os.Lchown(d, u.UID, u.GID)
	}
	if err := os.Lchown(p, u.UID, u.GID); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	return nil
}

// Env is the environment the harness gives the user's programs: what rlogind gives a shell.
func (u *User) Env() []string {
	return []string{
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"LOGNAME=" + u.Name,
		"SHELL=" + u.Shell,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TERM=xterm",
	}
}

// Command returns a command that runs as the user, in the user's home, with Env.
func (u *User) Command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Env = u.Env()
	cmd.Dir = u.Home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
	return cmd
}

// LoginShell returns a command running the user's shell as a login shell (argv[0] "-sh" style),
// as rlogind starts it.
func (u *User) LoginShell() *exec.Cmd {
	cmd := u.Command(u.Shell)
	cmd.Args = []string{"-" + filepath.Base(u.Shell)}
	return cmd
}

// Close kills what still runs as the user and removes the account (not its home directory: that
// lies in the caller's temporary directory).
func (u *User) Close() error {
	killUserProcesses(u.UID)
	var out []byte
	var err error
	for range 20 { // userdel refuses while a process of the user is still exiting
		if out, err = exec.Command("userdel", u.Name).CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("servers: userdel %s: %w: %s", u.Name, err, out)
}

// killUserProcesses sends SIGKILL to each process whose real user is uid: the temporary user's
// shells that outlived their sessions. Every one of them was started by this harness.
func killUserProcesses(uid int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 && f[0] == strconv.Itoa(uid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				break
			}
		}
	}
}

// FreePort asks the kernel for a loopback TCP port nobody uses right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("servers: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until something accepts connections on addr, or the process behind done
// exits, or ctx ends.
func waitListening(ctx context.Context, addr string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("servers: the server exited before it listened")
		case <-ctx.Done():
			return fmt.Errorf("servers: nothing listens on %s: %w", addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// process is a server process the harness started and waits for.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true // no controlling terminal: proc.NoTTY tells it from its sessions
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("servers: starting %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to 10 s, then kills.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
	return nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }
