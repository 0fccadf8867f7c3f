package pamlogin

import (
	"slices"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/usershell"
)

func TestParseLoginDefs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     loginDefs
	}{
		{"debian", "MAIL_DIR        /var/mail\n#ENV_PATH x\nENV_SUPATH\tPATH=/sbin:/bin\nENV_PATH\tPATH=/usr/local/bin:/usr/bin:/bin\n",
			loginDefs{path: "/usr/local/bin:/usr/bin:/bin", mailDir: "/var/mail"}},
		{"no PATH= prefix", "ENV_PATH /usr/bin:/bin\n", loginDefs{path: "/usr/bin:/bin"}},
		{"empty", "", loginDefs{}},
		{"malformed", "ENV_PATH\nMAIL_DIR a b\n", loginDefs{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseLoginDefs(strings.NewReader(tc.in)); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSessionEnv(t *testing.T) {
	defs := loginDefs{path: "/usr/bin:/bin", mailDir: "/var/spool/mail"}
	for _, tc := range []struct {
		name   string
		pamEnv []string
		defs   loginDefs
		term   string
		locale []string
		want   []string
	}{
		{"defaults", nil, loginDefs{}, "xterm", nil, []string{
			"PATH=" + usershell.DefaultPath, "MAIL=/var/mail/alice", "HOME=/home/alice", "SHELL=/bin/bash",
			"USER=alice", "LOGNAME=alice", "TERM=xterm",
		}},
		{"login.defs", nil, defs, "", []string{"LANG=C.UTF-8"}, []string{
			"PATH=/usr/bin:/bin", "MAIL=/var/spool/mail/alice", "HOME=/home/alice", "SHELL=/bin/bash",
			"USER=alice", "LOGNAME=alice", "LANG=C.UTF-8",
		}},
		{"PAM's over defaults, identity and client's over PAM's",
			[]string{"LANG=fr_FR.UTF-8", "PATH=/opt/bin", "MAIL=/m/alice", "HOME=/tmp", "USER=root", "XDG_SESSION_ID=4", "=x", "NOEQUALS"},
			defs, "vt100", []string{"LANG=C.UTF-8", "LC_TIME=C"}, []string{
				"LANG=C.UTF-8", "PATH=/opt/bin", "MAIL=/m/alice", "HOME=/home/alice", "USER=alice", "XDG_SESSION_ID=4",
				"SHELL=/bin/bash", "LOGNAME=alice", "TERM=vt100", "LC_TIME=C",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sessionEnv(tc.pamEnv, tc.defs, "alice", "/home/alice", "/bin/bash", tc.term, tc.locale)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
