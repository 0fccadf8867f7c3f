package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/transport"
)

// What rlogin prints about a failure is one line: "rlogin: ", then what happened in the user's
// words. The errors underneath keep their chains (%w) for errors.Is and errors.As, but their texts
// are the packages' own: "transport: tls handshake: ...", "session: connection lost: ...". Shown
// as they are, one failure would read "rlogin: client: transport: ...". So each failure rlogin
// expects is worded here, and any other error's text is shown without this module's package
// prefixes (plainText).

// connectError is a failure worded for the user, with the error it comes from.
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return "client: " + e.msg }
func (e *connectError) Unwrap() error { return e.err }

// userMessage is err as rlogin shows it after "rlogin: ": the words chosen for the user, or else
// the error's text without package prefixes.
func userMessage(err error) string {
	var ce *connectError
	if errors.As(err, &ce) {
		return ce.msg
	}
	return plainText(err)
}

// plainText is err's text without this module's package prefixes (errtext.Plain).
func plainText(err error) string { return errtext.Plain(err) }

// dialMessage words a failure to reach the login mailbox like ssh does.
func dialMessage(host string, port int, err error) string {
	where := connectWhere(host, port)
	var mailbox *transport.MailboxError
	var dns *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &mailbox) && mailbox.Refused:
		return fmt.Sprintf("%s: no login service: %s", where, mailbox.Reason)
	case errors.As(err, &mailbox) && isSSHBanner(mailbox.Reply):
		return sshMessage(where, port, false)
	case errors.As(err, &mailbox) && strings.HasPrefix(mailbox.Reply, "\x01"):
		// A classic rlogin server's refusal (RFC 1282): it took "login" for a bad handshake.
		return fmt.Sprintf("%s: the server there speaks classic rlogin, not rlogin's secure protocol: "+
			"use rlogind's port (%d by default), or -c, which is NOT ENCRYPTED", where, DefaultPort)
	case errors.As(err, &mailbox):
		return fmt.Sprintf("%s: the server there is not rlogind: it answered %s", where, strconv.QuoteToASCII(mailbox.Reply))
	case errors.As(err, &dns):
		return fmt.Sprintf("could not resolve hostname %s: %s", host, dns.Err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return where + ": connection timed out"
	case errors.As(err, &errno):
		return fmt.Sprintf("%s: %s", where, errno.Error())
	}
	return fmt.Sprintf("%s: %s", where, plainText(err))
}

// connectWhere starts the message about a failure to reach host and port, as ssh's does.
func connectWhere(host string, port int) string {
	return fmt.Sprintf("connect to host %s port %d", host, port)
}

// isSSHBanner reports whether line is how an SSH server greets every client, at once and before
// it reads anything (RFC 4253, 4.2: "SSH-protoversion-softwareversion"): rlogin was pointed at
// an sshd, usually with -p 22, and reads that greeting as the answer to its request.
func isSSHBanner(line string) bool {
	return strings.HasPrefix(line, "SSH-2.0-") || strings.HasPrefix(line, "SSH-1.")
}

// sshMessage says that an SSH server answered on port, where rlogind (or with classic, a classic
// rlogin server) was expected, and what to do instead.
func sshMessage(where string, port int, classic bool) string {
	if classic {
		return fmt.Sprintf("%s: the server there speaks SSH, not classic rlogin: use ssh for port %d, "+
			"or the classic rlogin port (%d by default)", where, port, ClassicPort)
	}
	return fmt.Sprintf("%s: the server there speaks SSH, not rlogin: use ssh for port %d, or rlogind's port (%d by default)",
		where, port, DefaultPort)
}
