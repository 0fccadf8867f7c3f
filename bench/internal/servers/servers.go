package servers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a running login server on loopback.
type Server struct {
	Name string // short name for tables: "rlogin", "ssh", "netkit"
	Port int
	Addr string // 127.0.0.1:port
	Log  string // path of the server's log
	// HostKeyPub is the server's public host key in authorized_keys form ("ssh-ed25519 AAAA..."),
	// for servers that have one.
	HostKeyPub string

	proc    *process
	cleanup []func()
}

// Pid is the pid of the server's main process: the root of its process tree.
func (s *Server) Pid() int { return s.proc.pid() }

// Exited reports whether the server's main process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.proc.done:
		return true
	default:
		return false
	}
}

// Close stops the server and removes what it set up.
func (s *Server) Close() error {
	err := s.proc.stop()
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	return err
}

// Build builds the named commands of the product module in root (cmd/rlogin, cmd/rlogind) into
// dir, with the build tags tags (the profiling hooks are -tags profile), and returns their paths
// by name.
func Build(root, dir string, tags []string, pkgs ...string) (map[string]string, error) {
	out := make(map[string]string)
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, filepath.Base(pkg))
		args := []string{"build", "-o", bin}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command("go", append(args, "./"+pkg)...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("servers: go build ./%s: %w\n%s", pkg, err, b)
		}
		if err := os.Chmod(bin, 0o755); err != nil {
			return nil, fmt.Errorf("servers: %w", err)
		}
		out[filepath.Base(pkg)] = bin
	}
	return out, nil
}

// productModule is the module path of the commands the benchmarks build.
const productModule = "github.com/rlogin-go/rlogin"

// ModuleRoot finds the directory of the product's go.mod (module github.com/rlogin-go/rlogin)
// from the working directory up, passing bench's own go.mod on the way.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("servers: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == productModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("servers: no go.mod of %s above the working directory: run this from the repository", productModule)
		}
		dir = parent
	}
}

// modulePath returns the path of a go.mod's module directive, "" if it has none.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line, _, _ = strings.Cut(line, "//")
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// StartRlogind starts our rlogind in user mode, as u, with HOME = u.Home, on a free loopback
// port, with extraArgs after -addr; extraEnv is added to its environment (a profiling wrapper
// reads its settings there). On
// its first start rlogind creates its host key and authorizes u's own rlogin key; StartRlogind
// then writes the host key into u's ~/.rlogin/known_hosts, so rlogin asks nothing.
func StartRlogind(ctx context.Context, u *User, bin, logDir string, extraArgs, extraEnv []string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "rlogin", Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), Log: filepath.Join(logDir, fmt.Sprintf("rlogind-%d.log", port))}
	cmd := u.Command(bin, append([]string{"-addr", s.Addr}, extraArgs...)...)
	cmd.Env = append([]string{"HOME=" + u.Home, "PATH=/usr/local/bin:/usr/bin:/bin"}, extraEnv...)
	if s.proc, err = startProcess(cmd, s.Log); err != nil {
		return nil, err
	}
	if err := waitListening(ctx, s.Addr, s.proc.done); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w (log: %s)", err, s.Log)
	}
	pub, err := readWhenMade(ctx, filepath.Join(u.Home, ".rlogin", "rlogind_host_ed25519_key.pub"), s.proc.done)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("servers: rlogind's host key: %w (log: %s)", err, s.Log)
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		s.Close()
		return nil, fmt.Errorf("servers: rlogind's host key: malformed %q", pub)
	}
	s.HostKeyPub = f[0] + " " + f[1]
	known, _ := os.ReadFile(filepath.Join(u.Home, ".rlogin", "known_hosts")) // other rlogind's
	known = fmt.Appendf(known, "[127.0.0.1]:%d %s\n", port, s.HostKeyPub)
	if err := u.WriteFile(".rlogin/known_hosts", known, 0o600); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// readWhenMade reads the file at path once it exists with some content: rlogind listens first
// and makes its keys after. It gives up when the process behind done exits, or after 20 s.
func readWhenMade(ctx context.Context, path string, done <-chan struct{}) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
			return b, nil
		}
		select {
		case <-done:
			return nil, fmt.Errorf("the server exited before it wrote %s", path)
		case <-ctx.Done():
			return nil, fmt.Errorf("no %s: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// RloginClient is the command line of our rlogin to s, run as u.
func (s *Server) RloginClient(u *User, bin string) *exec.Cmd {
	return RloginClientTo(u, bin, s.Port)
}

// RloginClientTo is the command line of our rlogin to port on 127.0.0.1 (a proxy in front of a
// server), run as u.
func RloginClientTo(u *User, bin string, port int) *exec.Cmd {
	return u.Command(bin, "-p", strconv.Itoa(port), "127.0.0.1")
}

// StartSshd starts OpenSSH's sshd (root, as it must be) on a free loopback port with a temporary
// configuration in dir: a fresh ed25519 host key, public key authentication only, against an
// authorized_keys file holding a fresh ed25519 key of u's (~/.ssh/id_ed25519), whose
// known_hosts gets the host key. UsePAM no and StrictModes no (the files live in a temporary
// directory); everything else is sshd's default. extraConfig lines are appended.
func StartSshd(ctx context.Context, u *User, dir string, extraConfig ...string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "ssh", Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), Log: filepath.Join(dir, "sshd.log")}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	userKey := filepath.Join(u.Home, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(userKey), 0o700); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	for _, k := range []string{hostKey, userKey} {
		if _, err := os.Stat(k); err == nil {
			continue
		}
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("servers: ssh-keygen: %w: %s", err, out)
		}
	}
	if err := u.ChownAll(filepath.Dir(userKey)); err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "ssh_authorized_keys")
	if err := copyFile(userKey+".pub", authorized, 0o644); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	f := strings.Fields(string(pub))
	s.HostKeyPub = f[0] + " " + f[1]
	if err := u.WriteFile(".ssh/known_hosts", fmt.Appendf(nil, "[127.0.0.1]:%d %s\n", port, s.HostKeyPub), 0o600); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "sshd_config")
	lines := []string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authorized,
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile none",
		"AllowUsers " + u.Name,
	}
	lines = append(lines, extraConfig...)
	if err := os.WriteFile(config, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	// sshd's privilege separation directory; Debian's init script makes it at boot. It stays:
	// a run that removed it at its end broke the sshd of another run still going (each new
	// connection then failed in kex_exchange_identification).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", config)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if s.proc, err = startProcess(cmd, s.Log); err != nil {
		return nil, err
	}
	if err := waitListening(ctx, s.Addr, s.proc.done); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w (log: %s)", err, s.Log)
	}
	return s, nil
}

// SSHClient is the command line of OpenSSH's ssh -tt to s, run as u: no configuration file
// (-F /dev/null: all defaults), the user's key, and the host key pinned.
func (s *Server) SSHClient(u *User) *exec.Cmd {
	return SSHClientTo(u, s.Port)
}

// SSHClientTo is SSHClient to port on 127.0.0.1 (a proxy in front of a server).
func SSHClientTo(u *User, port int) *exec.Cmd {
	return u.Command("/usr/bin/ssh", "-F", "/dev/null", "-tt", "-p", strconv.Itoa(port),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-l", u.Name, "127.0.0.1")
}

// StartInetd starts openbsd-inetd (root) with a temporary configuration that runs netkit's
// in.rlogind for each connection to a free loopback port, and writes u's ~/.rhosts so that
// rlogin from u on this host logs in without a password (ruserok; PAM's pam_rhosts in
// /etc/pam.d/rlogin).
func StartInetd(ctx context.Context, u *User, dir string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "netkit", Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), Log: filepath.Join(dir, "inetd.log")}
	rhosts := fmt.Sprintf("127.0.0.1 %s\nlocalhost %s\n", u.Name, u.Name)
	if err := u.WriteFile(".rhosts", []byte(rhosts), 0o600); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "inetd.conf")
	line := fmt.Sprintf("127.0.0.1:%d stream tcp nowait root /usr/sbin/in.rlogind in.rlogind\n", port)
	if err := os.WriteFile(config, []byte(line), 0o600); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	// -d: stay in the foreground and log to stderr; -i: do not daemonize.
	cmd := exec.Command("/usr/sbin/inetd", "-d", "-i", config)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if s.proc, err = startProcess(cmd, s.Log); err != nil {
		return nil, err
	}
	if err := waitListening(ctx, s.Addr, s.proc.done); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w (log: %s)", err, s.Log)
	}
	return s, nil
}

// NetkitClient is the command line of netkit's rlogin to s, run as u (it is setuid root, which
// lets it bind the privileged source port in.rlogind insists on).
func (s *Server) NetkitClient(u *User) *exec.Cmd {
	return u.Command("/usr/bin/netkit-rlogin", "-p", strconv.Itoa(s.Port), "127.0.0.1")
}

func copyFile(from, to string, perm os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		return fmt.Errorf("servers: %w", err)
	}
	return nil
}
