package client

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// testSessions are two detached sessions and an attached one, as a server lists them.
func testSessions(now time.Time) []session.SessionInfo {
	id := func(s string) session.SessionID {
		var sid session.SessionID
		copy(sid[:], s)
		return sid
	}
	return []session.SessionInfo{
		{ID: id("\x3f\x9a\x0b\x1c1"), Started: now.Add(-3 * time.Hour), Detached: now.Add(-4 * time.Minute),
			Peer: "192.0.2.7:51234", What: "xterm-256color", PID: 4242},
		{ID: id("\x77\xc0\xe2\xd1"), Attached: true, Started: now.Add(-26 * time.Hour),
			Peer: "198.51.100.3:4022", What: "top", PID: 5120},
		{ID: id("\x3f\x9a\x0b\x1c2"), Started: now.Add(-2 * time.Hour), Detached: now.Add(-125 * time.Minute),
			Peer: "[2001:db8::1]:40000", What: "xterm\x1b[2J", PID: 0},
	}
}

// TestChooseSession: an id prefix names one session, in any state; without one, only the one
// detached session is taken, and every other case says why and how to choose.
func TestChooseSession(t *testing.T) {
	now := time.Now()
	list := testSessions(now)
	for _, tc := range []struct {
		name string
		list []session.SessionInfo
		id   string
		want int    // index in list, or -1
		msg  string // in the message when none is chosen
	}{
		{"the only detached", list[:2], "", 0, ""},
		{"attached by id", list, "77c0", 1, ""},
		{"id in upper case", list, "77C0E2D1", 1, ""},
		{"full id", list, list[2].ID.String(), 2, ""},
		{"ambiguous id", list, "3f9a0b1c", -1, "2 sessions on web1 have an id starting with 3f9a0b1c: give more of it"},
		{"unknown id", list, "abc", -1, "no session of yours on web1 has an id starting with abc"},
		{"two detached", list, "", -1, "2 sessions of yours on web1 are detached; choose one: rlogin -R ID web1"},
		{"only attached", list[1:2], "", -1, "no session of yours on web1 is detached; to take one over from its client, name it: rlogin -R ID web1"},
		{"none", nil, "", -1, "you have no sessions on web1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := chooseSession(tc.list, tc.id, "web1")
			switch {
			case tc.want < 0 && (got != nil || msg != tc.msg):
				t.Errorf("chose %v, %q; want none, %q", got, msg, tc.msg)
			case tc.want >= 0 && (got == nil || got.ID != tc.list[tc.want].ID):
				t.Errorf("chose %v (%q), want %s", got, msg, tc.list[tc.want].ID)
			}
		})
	}
}

// TestWriteSessions: the list as -R prints it, a table with the short ids, oldest first; what the
// server sent is shown sanitized.
func TestWriteSessions(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.Local)
	var b bytes.Buffer
	if err := writeSessions(&b, testSessions(now), now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID        STATE               STARTED      FROM                 PID   RUNS\n" +
		"77c0e2d1  attached            Dec 6 10:00  198.51.100.3:4022    5120  top\n" +
		"3f9a0b1c  detached 4m ago     09:00        192.0.2.7:51234      4242  xterm-256color\n" +
		"3f9a0b1c  detached 2h05m ago  10:00        [2001:db8::1]:40000  -     xterm\\x1b[2J\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("a control character from the server reached the terminal")
	}
}

func TestAgo(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{
		0: "0s ago", 59 * time.Second: "59s ago", 61 * time.Second: "1m ago", 3599 * time.Second: "59m ago",
		time.Hour + 5*time.Minute: "1h05m ago", 50 * time.Hour: "2d2h ago", -time.Minute: "0s ago",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
