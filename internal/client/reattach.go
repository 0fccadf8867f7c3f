package client

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// Reattach (-R). rlogin logs in as usual (same key, same host key check) but asks for the list
// of the user's sessions on the host instead of a new one (session.ListSessions), then chooses:
//
//   - with an id (-R id host): the one session whose id starts with it, detached or attached;
//     an attached one is taken over (its client is disconnected with "taken over from ADDR"):
//     naming it is the confirmation, so a script can do it and no question is ever asked;
//   - without: the only detached session. With none, or with several, rlogin prints the list
//     (standard output) and how to choose (standard error), and exits with status 255, having
//     changed nothing: an attached session is never taken over unless named;
//   - when standard input is not a terminal, none: rlogin prints the list and exits with status
//     0, so that "rlogin -R host </dev/null" lists the sessions (taking one over with a script's
//     input would end its shell at the script's end of input).
//
// Then it logs in again on a new connection with the same key, asking to reattach that session
// (session.Request.Resume without a secret; the server checks that it is this user's), and the
// session goes on as after any login, automatic resume included.

// reattach is run's login for -R: list the user's sessions, choose one, and log in again to
// take it over.
func (r *runner) reattach(ctx context.Context, user string, dir rloginDir) (*session.Client, io.WriteCloser, error) {
	var sess *session.Client
	var stdinPipe io.WriteCloser
	err := r.withKeys(ctx, dir, func(id *identity) error {
		var list []session.SessionInfo
		err := r.connect(ctx, id, dir, func(sc *transport.SecureConn) (err error) {
			list, err = r.listSessions(ctx, sc, id, user)
			return err
		})
		if err != nil {
			return err
		}
		if !r.inTTY {
			return &listedError{list: list}
		}
		chosen, why := chooseSession(list, r.opts.ReattachID, r.opts.Host)
		if chosen == nil {
			return &noChoiceError{list: list, msg: why}
		}
		if chosen.Attached {
			fmt.Fprintf(r.stderr, "rlogin: taking over session %s on %s from its client at %s\n",
				chosen.ID.Short(), r.opts.Host, orDash(sanitize.Text(chosen.Peer)))
		} else {
			fmt.Fprintf(r.stderr, "rlogin: reattaching session %s on %s (detached %s)\n",
				chosen.ID.Short(), r.opts.Host, ago(time.Now(), chosen.Detached))
		}
		sess, stdinPipe, err = r.login(ctx, id, user, dir, &session.ResumeRequest{ID: chosen.ID})
		var refused *session.RefusedError
		if errors.As(err, &refused) && refused.Reason == noSessionReason {
			return &connectError{msg: fmt.Sprintf("session %s on %s ended meanwhile", chosen.ID.Short(), r.opts.Host), err: err}
		}
		return err
	})
	var nc *noChoiceError
	var listed *listedError
	switch {
	case errors.As(err, &nc) && len(nc.list) > 0:
		_ = writeSessions(r.stdout, nc.list, time.Now()) // best effort: the reason follows anyway
	case errors.As(err, &listed) && len(listed.list) > 0:
		if werr := writeSessions(r.stdout, listed.list, time.Now()); werr != nil {
			return nil, nil, &connectError{msg: "writing the list: " + plainText(werr), err: werr}
		}
	}
	return sess, stdinPipe, err
}

// listedError is reattach's result when standard input is not a terminal: it lists the
// sessions and takes none over. A session's input must be someone typing: the end of a script's
// or /dev/null's would end its shell.
type listedError struct{ list []session.SessionInfo }

func (e *listedError) Error() string { return "client: sessions listed" }

// noChoiceError is reattach's failure when the list of sessions leaves no single choice.
type noChoiceError struct {
	list []session.SessionInfo
	msg  string
}

func (e *noChoiceError) Error() string { return "client: " + e.msg }

// listSessions asks the server on sc for the list of user's sessions, logging in with id.
func (r *runner) listSessions(ctx context.Context, sc *transport.SecureConn, id *identity, user string) ([]session.SessionInfo, error) {
	c := session.NewClient(sc, r.request(user))
	c.Signer = id.signer // as at a login (keyproof)
	var list []session.SessionInfo
	err := startLogin(r.opts.Host, r.connectTimeout(), func() (err error) {
		list, err = c.ListSessions(ctx)
		return err
	}, c.Close, secureRefusal)
	if errors.Is(err, session.ErrResumeUnsupported) {
		return nil, &connectError{msg: r.opts.Host + "'s rlogind cannot list or reattach sessions (too old)", err: err}
	}
	return list, err
}

// chooseSession picks the session to reattach from list, as above. With no single choice it
// returns nil and the message that says why (the caller prints the list with it).
func chooseSession(list []session.SessionInfo, id, host string) (*session.SessionInfo, string) {
	if id != "" {
		var found []*session.SessionInfo
		for i := range list {
			if strings.HasPrefix(list[i].ID.String(), strings.ToLower(id)) {
				found = append(found, &list[i])
			}
		}
		switch len(found) {
		case 1:
			return found[0], ""
		case 0:
			return nil, fmt.Sprintf("no session of yours on %s has an id starting with %s", host, id)
		}
		return nil, fmt.Sprintf("%d sessions on %s have an id starting with %s: give more of it", len(found), host, id)
	}
	var detached []*session.SessionInfo
	for i := range list {
		if !list[i].Attached {
			detached = append(detached, &list[i])
		}
	}
	switch {
	case len(detached) == 1:
		return detached[0], ""
	case len(list) == 0:
		return nil, fmt.Sprintf("you have no sessions on %s", host)
	case len(detached) == 0:
		return nil, fmt.Sprintf("no session of yours on %s is detached; to take one over from its client, name it: rlogin -R ID %s", host, host)
	}
	return nil, fmt.Sprintf("%d sessions of yours on %s are detached; choose one: rlogin -R ID %s", len(detached), host, host)
}

// writeSessions writes list as a table, as -R shows it, oldest first: the id's short form, the
// state and since when, where the client was, the shell's process id and what the session runs.
func writeSessions(w io.Writer, list []session.SessionInfo, now time.Time) error {
	// Oldest first, in an order that does not depend on the server's.
	list = slices.SortedFunc(slices.Values(list), func(a, b session.SessionInfo) int {
		return cmp.Or(a.Started.Compare(b.Started), bytes.Compare(a.ID[:], b.ID[:]))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTED\tFROM\tPID\tRUNS")
	for _, si := range list {
		state := "attached"
		if !si.Attached {
			state = "detached " + ago(now, si.Detached)
		}
		pid := "-"
		if si.PID > 0 {
			pid = strconv.Itoa(si.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", si.ID.Short(), state, started(now, si.Started),
			orDash(sanitize.Text(si.Peer)), pid, orDash(sanitize.Text(si.What)))
	}
	return tw.Flush()
}

// ago says how long before now t was, in the largest units that matter: "5s ago", "3m ago",
// "2h05m ago", "3d4h ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := max(now.Sub(t), 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh ago", int(d.Hours())/24, int(d.Hours())%24)
}

// started shows a start time in the local zone: the time of day for today, else the date too.
func started(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Jan 2 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
