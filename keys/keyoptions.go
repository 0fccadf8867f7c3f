package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/rlogin-go/rlogin/internal/sanitize"
)

// KeyOptions are the options of an authorized_keys line that this package enforces, with
// OpenSSH's meaning (sshd(8), "AUTHORIZED_KEYS FILE FORMAT"). Any other option makes the line
// authorize nobody.
type KeyOptions struct {
	// Command is command="...": the only command the key may run. The server runs it in place
	// of what the client asked for (a login shell or a command), and gives it the client's
	// command in SSH_ORIGINAL_COMMAND. "" if the line has none.
	Command string
	// NoPTY is no-pty: the key gets no terminal, so only a command without one.
	NoPTY bool
	// From is from="pattern-list": the client's address must match it (FromMatches); "" if the
	// line has none.
	From string
}

// authorizedKey is one usable line: its key and options.
type authorizedKey struct {
	key  ed25519.PublicKey
	opts KeyOptions
}

// Permit returns the options of the first line that authorizes pub for a client at addr: a
// line for pub without from=, or whose from= matches addr. ok is false if there is none (a
// later line for the same key still counts when an earlier one's from= does not match, as in
// sshd).
func (a *Authorized) Permit(pub ed25519.PublicKey, addr net.Addr) (opts KeyOptions, ok bool) {
	if a == nil || len(pub) != ed25519.PublicKeySize {
		return KeyOptions{}, false
	}
	for _, k := range a.keys {
		if bytes.Equal(k.key, pub) && (k.opts.From == "" || FromMatches(k.opts.From, addr)) {
			return k.opts, true
		}
	}
	return KeyOptions{}, false
}

// FromMatches reports whether a client at addr matches list, the value of a from= option:
// comma-separated patterns, each an address with the wildcards '*' and '?' (matched against
// the address as text: "192.0.2.*"), or a CIDR prefix ("192.0.2.0/24"), and each may be
// negated with a leading '!'. As in sshd without UseDNS (its default), the client's address
// stands in for its host name. A negated pattern that matches refuses, whatever else matches;
// otherwise one pattern must match. A client that is not at an IP address matches nothing.
func FromMatches(list string, addr net.Addr) bool {
	ip, ok := addrIP(addr)
	if !ok {
		return false
	}
	text := ip.String()
	matched := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var m bool
		if prefix, err := netip.ParsePrefix(p); err == nil {
			m = prefix.Contains(ip)
		} else {
			m = wildcardMatch(strings.ToLower(p), text) // OpenSSH's match_pattern: no classes, no escapes
		}
		if m && neg {
			return false
		}
		matched = matched || m
	}
	return matched
}

// addrIP returns addr's IP address, without a v4-in-v6 mapping.
func addrIP(addr net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	nip, ok := netip.AddrFromSlice(ip)
	return nip.Unmap(), ok
}

// parseKeyOptions reads the options of an authorized_keys line (as
// golang.org/x/crypto/ssh.ParseAuthorizedKey returns them: name or name="value"). It fails
// for any option it does not enforce, a repeated one, or a bad value.
func parseKeyOptions(options []string) (KeyOptions, error) {
	var o KeyOptions
	seen := map[string]bool{}
	for _, opt := range options {
		name, val, hasVal := strings.Cut(opt, "=")
		name = strings.ToLower(name) // as sshd, which compares names without case
		if seen[name] {
			return o, fmt.Errorf("option %s appears twice", sanitize.Text(name))
		}
		seen[name] = true
		switch {
		case name == "no-pty" && !hasVal:
			o.NoPTY = true
		case name == "command" && hasVal:
			cmd, err := dequote(val)
			if err != nil || cmd == "" {
				return o, errors.New("bad command= option")
			}
			o.Command = cmd
		case name == "from" && hasVal:
			list, err := dequote(val)
			if err != nil || checkFromList(list) != nil {
				return o, errors.New("bad from= option")
			}
			o.From = list
		default:
			return o, fmt.Errorf("key option %s is not supported (rlogind enforces command=, from= and no-pty)", sanitize.Text(name))
		}
	}
	return o, nil
}

// dequote reads a quoted option value as sshd's opt_dequote: inside the double quotes, \"
// stands for a quote; any other backslash is kept.
func dequote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("value not in double quotes")
	}
	v = v[1 : len(v)-1]
	if strings.Contains(strings.ReplaceAll(v, `\"`, ""), `"`) {
		return "", errors.New("unescaped quote in value")
	}
	v = strings.ReplaceAll(v, `\"`, `"`)
	if strings.IndexByte(v, 0) >= 0 {
		return "", errors.New("NUL in value")
	}
	return v, nil
}

// checkFromList checks the syntax of a from= pattern list: no empty pattern, and a pattern
// with a '/' must be a CIDR prefix (sshd refuses a malformed one).
func checkFromList(list string) error {
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimPrefix(p, "!")
		if p == "" {
			return errors.New("empty pattern")
		}
		if strings.Contains(p, "/") {
			prefix, err := netip.ParsePrefix(p)
			if err != nil {
				return err
			}
			if prefix.Masked() != prefix {
				return fmt.Errorf("%s has bits set past its prefix length", sanitize.Text(p))
			}
		}
	}
	return nil
}
