package rhosts

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/userfile"
)

func TestRhostsAllows(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.7")
	lookup := func(host string) []netip.Addr {
		switch host {
		case "trusted.example":
			return []netip.Addr{netip.MustParseAddr("2001:db8::1"), peer}
		case "other.example":
			return []netip.Addr{netip.MustParseAddr("192.0.2.8")}
		}
		return nil
	}
	for _, tc := range []struct {
		name         string
		lines        string
		equiv        bool
		luser, ruser string
		want         bool
	}{
		{"address, same user", "192.0.2.7", false, "bob", "bob", true},
		{"address, other user needs a name", "192.0.2.7", false, "bob", "alice", false},
		{"address and user", "192.0.2.7 alice", false, "bob", "alice", true},
		{"name", "trusted.example bob", false, "bob", "bob", true},
		{"name of another host", "other.example bob", false, "bob", "bob", false},
		{"mapped address", "::ffff:192.0.2.7", false, "bob", "bob", true},
		{"wildcard host never", "+", false, "bob", "bob", false},
		{"wildcard user never", "192.0.2.7 +", false, "bob", "alice", false},
		{"netgroup never", "@trusted bob", false, "bob", "bob", false},
		{"negated host denies", "-192.0.2.7\n192.0.2.7 bob", false, "bob", "bob", false},
		{"negated user denies", "192.0.2.7 -bob\n192.0.2.7 bob", false, "bob", "bob", false},
		{"comment", "# 192.0.2.7 bob", false, "bob", "bob", false},
		{"hosts.equiv, same name", "192.0.2.7", true, "bob", "bob", true},
		{"hosts.equiv, named user", "192.0.2.7 alice", true, "bob", "alice", true},
		{"empty", "", false, "bob", "bob", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allows(strings.Split(tc.lines, "\n"), tc.equiv, tc.luser, tc.ruser, peer, lookup)
			if got != tc.want {
				t.Errorf("allows(%q, %s as %s) = %v, want %v", tc.lines, tc.ruser, tc.luser, got, tc.want)
			}
		})
	}
}

func TestReadTrustFile(t *testing.T) {
	dir := t.TempDir()
	uid := os.Geteuid()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("127.0.0.1 bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if lines, err := readTrustFile(good, uid); err != nil || len(lines) != 1 {
		t.Errorf("readTrustFile(good) = %q, %v", lines, err)
	}
	writable := filepath.Join(dir, "writable")
	if err := os.WriteFile(writable, []byte("127.0.0.1 bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(writable, 0o622)
	if _, err := readTrustFile(writable, uid); err == nil {
		t.Error("a group-writable trust file was read")
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := readTrustFile(link, uid); err == nil {
		t.Error("a trust file that is a symbolic link was read")
	}
	if _, err := readTrustFile(dir, uid); err == nil {
		t.Error("a directory was read as a trust file")
	}
	if uid == 0 {
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chown(other, 4242, 4242)
		if _, err := readTrustFile(other, 1000); err == nil {
			t.Error("a trust file owned by another user was read")
		}
	}
}

// TestCheckUsesRhosts: from a privileged port, the user's own ~/.rhosts trusts the client it
// lists (by address, so no name lookup), and no other; a Unix socket is never trusted.
func TestCheckUsesRhosts(t *testing.T) {
	home := t.TempDir()
	uid := os.Getuid()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".rhosts"), []byte("192.0.2.7 bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var files userfile.Reader
	from := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, tc := range []struct {
		ruser   string
		peer    net.Addr
		trusted bool
	}{
		{"bob", from("192.0.2.7", 1022), true},
		{"bob", from("::ffff:192.0.2.7", 600), true},
		{"eve", from("192.0.2.7", 1022), false},
		{"bob", from("192.0.2.8", 1022), false},
		{"bob", from("192.0.2.7", 1024), false},
		{"bob", &net.UnixAddr{Name: "@", Net: "unix"}, false},
	} {
		why := Check(context.Background(), log, &files, Request{User: "alice", UID: uid, Home: home, RemoteUser: tc.ruser, Peer: tc.peer})
		if (why == "") != tc.trusted {
			t.Errorf("%s from %v: %q, want trusted %v", tc.ruser, tc.peer, why, tc.trusted)
		}
	}
}

// TestCheckRefusesPseudoFiles: a ~/.rhosts that is a FIFO, or a symbolic link to /proc/kmsg (whose
// read blocks), trusts nobody, at once, and says why in the log.
func TestCheckRefusesPseudoFiles(t *testing.T) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	rhosts := filepath.Join(home, ".rhosts")
	var files userfile.Reader
	for _, tc := range []struct {
		name string
		make func() error
		why  string
	}{
		{"fifo", func() error { return syscall.Mkfifo(rhosts, 0o600) }, "not a regular file"},
		{"link to /proc/kmsg", func() error { return os.Symlink("/proc/kmsg", rhosts) }, "symbolic links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(rhosts)
			if err := tc.make(); err != nil {
				t.Fatal(err)
			}
			var logged strings.Builder
			log := slog.New(slog.NewTextHandler(&logged, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the watchdog too
			defer cancel()
			why := Check(ctx, log, &files, Request{User: "alice", UID: os.Getuid(), Home: home, RemoteUser: "alice",
				Peer: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1022}})
			if why == "" || ctx.Err() != nil {
				t.Fatalf("Check = %q, ctx %v; want refused at once", why, ctx.Err())
			}
			if !strings.Contains(logged.String(), "trust file not used") || !strings.Contains(logged.String(), tc.why) {
				t.Errorf("log %q does not say why (%q)", logged.String(), tc.why)
			}
		})
	}
}

// TestCheckBoundedByDeadline: trust files not read by ctx's deadline trust nobody.
func TestCheckBoundedByDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	why := Check(ctx, log, &userfile.Reader{}, Request{User: "alice", UID: os.Getuid(), Home: t.TempDir(), RemoteUser: "alice",
		Peer: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1022}})
	if why == "" || !strings.Contains(logged.String(), "trust files not used") {
		t.Errorf("Check = %q, log %q; want refused, logged", why, logged.String())
	}
}
