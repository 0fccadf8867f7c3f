package rhosts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/userfile"
)

// Paths of the trust files.
const (
	hostsEquivPath = "/etc/hosts.equiv"
	rhostsName     = ".rhosts"
)

// peerOf returns the client's address and whether its port is privileged (512-1023, as
// rresvport(3) binds them).
func peerOf(addr net.Addr) (netip.Addr, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ap := ta.AddrPort()
	return ap.Addr().Unmap(), ap.Port() >= 512 && ap.Port() <= 1023
}

// A Request asks whether a client may log in as a local user without a password.
type Request struct {
	User string // the local user
	UID  int
	Home string // the local user's home, where its .rhosts is
	// RemoteUser is the client's user name, as the classic handshake gave it.
	RemoteUser string
	// Peer is the client's address: trust needs TCP from a privileged port (512-1023).
	Peer net.Addr
}

// maxTrustFile bounds the size of a trust file, and maxTrustLines the lines of it used.
const (
	maxTrustFile  = 1 << 20
	maxTrustLines = 1024
)

// Check reports why r's client is not trusted to log in as r.User without a password, or "" if
// it is: the connection comes from a privileged port, and /etc/hosts.equiv (not for root) or
// the user's ~/.rhosts lists the client's host and user (see allows). The files are read with
// files, as r.UID, before ctx's deadline: a file that is not read in time, or not a regular file
// on a disk file system, trusts nobody. Host names in the files are looked up, for at most 5 s in
// all and not past ctx's deadline. It logs the trust file used, and the files it cannot use.
func Check(ctx context.Context, log *slog.Logger, files *userfile.Reader, r Request) string {
	peer, privileged := peerOf(r.Peer)
	if !privileged || !peer.IsValid() {
		return "the client's port is not privileged (512-1023)"
	}
	paths := []string{filepath.Join(r.Home, rhostsName)}
	if r.UID != 0 {
		paths = append([]string{hostsEquivPath}, paths...)
	}
	read, err := userfile.Load(ctx, files, r.UID, func() ([]trustFile, error) {
		return readTrustFiles(paths, r.UID), nil
	})
	if err != nil {
		log.Warn("trust files not used", "err", err)
		return "the trust files could not be read"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lookup := func(host string) []netip.Addr {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil
		}
		return ips
	}
	for _, f := range read {
		if errors.Is(f.err, fs.ErrNotExist) {
			continue
		}
		if f.err != nil {
			log.Warn("trust file not used", "err", f.err)
			continue
		}
		if allows(f.lines, f.path == hostsEquivPath, r.User, r.RemoteUser, peer, lookup) {
			log.Info("trusted by "+f.path, "peer", peer.String())
			return ""
		}
	}
	return "no trust file lists the client's host and user"
}

// trustFile is what readTrustFiles made of one trust file.
type trustFile struct {
	path  string
	lines []string
	err   error
}

// readTrustFiles reads the trust files at paths (see readTrustFile).
func readTrustFiles(paths []string, uid int) []trustFile {
	read := make([]trustFile, len(paths))
	for i, path := range paths {
		read[i].path = path
		read[i].lines, read[i].err = readTrustFile(path, uid)
	}
	return read
}

// readTrustFile reads the first maxTrustLines lines of a trust file, which must be a regular file
// on a disk file system (not a symbolic link) of at most maxTrustFile bytes, owned by uid or root
// and not writable by group or others, as ruserok(3) requires.
func readTrustFile(path string, uid int) ([]string, error) {
	data, fi, err := userfile.ReadFileNoFollow(path, maxTrustFile)
	if err != nil {
		return nil, fmt.Errorf("rhosts: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok || (int(st.Uid) != uid && st.Uid != 0):
		return nil, fmt.Errorf("rhosts: %s is not owned by the user or root", path)
	case fi.Mode().Perm()&0o022 != 0:
		return nil, fmt.Errorf("rhosts: %s is writable by group or others", path)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		if len(lines) == maxTrustLines {
			break
		}
		lines = append(lines, strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
	}
	return lines, nil
}

// allows reports whether trust-file lines let ruser at peer log in as luser. Each line is
// "host [user]": host an IP address or a name whose addresses (lookup) include peer; user the
// client user allowed, or, when missing, the same name as luser. A line that names host "-host"
// or user "-user" denies and ends the search, as in ruserok(3). Wildcards ("+") and netgroups
// ("@group") are never honoured: they trust the whole network. In hosts.equiv (equiv) a line
// with a user lets that user in as any local user, as ruserok(3) has it.
func allows(lines []string, equiv bool, luser, ruser string, peer netip.Addr, lookup func(string) []netip.Addr) bool {
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		host, user := f[0], ""
		if len(f) > 1 {
			user = f[1]
		}
		hostNeg := strings.HasPrefix(host, "-")
		host = strings.TrimPrefix(host, "-")
		if host == "" || host == "+" || strings.HasPrefix(host, "@") || strings.HasPrefix(user, "+") || strings.HasPrefix(user, "@") {
			continue
		}
		if !hostMatches(host, peer, lookup) {
			continue
		}
		if hostNeg {
			return false
		}
		userNeg := strings.HasPrefix(user, "-")
		user = strings.TrimPrefix(user, "-")
		switch {
		case user == "" && !userNeg:
			if ruser == luser {
				return true
			}
		case user == ruser:
			if userNeg {
				return false
			}
			return true // in hosts.equiv too: that user, as any local user (ruserok(3))
		}
	}
	return false
}

// hostMatches reports whether a trust-file host is peer: an equal IP address, or a name one of
// whose addresses is peer.
func hostMatches(host string, peer netip.Addr, lookup func(string) []netip.Addr) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap() == peer
	}
	for _, ip := range lookup(host) {
		if ip.Unmap() == peer {
			return true
		}
	}
	return false
}
