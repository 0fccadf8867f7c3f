package systemlogin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckAccount(t *testing.T) {
	const day = 24 * time.Hour
	today := int64(20000)
	now := time.Unix(today*int64(day/time.Second), 0).Add(13 * time.Hour)
	shadow := filepath.Join(t.TempDir(), "shadow")
	lines := "" +
		"plain:$6$x:19000:0:99999:7:::\n" +
		"noaging:!:::::::\n" +
		"expired:$6$x:19000:0:99999:7::20000:\n" +
		"expirestomorrow:$6$x:19000:0:99999:7::20001:\n" +
		"expiredepoch:*:19000:0:99999:7::0:\n" +
		"forced:$6$x:0:0:99999:7:::\n" +
		"mustchange:$6$x:19900:0:90:7:::\n" +
		"inactive:$6$x:19800:0:90:7:30::\n" +
		"graceleft:$6$x:19900:0:90:7:30::\n" +
		"future:$6$x:20100:0:90:7:30::\n" +
		"broken:$6$x:soon:0:90:7:30::\n" +
		"short:$6$x:0\n"
	if err := os.WriteFile(shadow, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		refused bool
	}{
		{"plain", false},
		{"noaging", false}, // a locked password: pam_unix's account stack lets a key in
		{"expired", true},
		{"expirestomorrow", false},
		{"expiredepoch", true}, // chage -E 0
		{"forced", true},       // passwd -e
		{"mustchange", true},
		{"inactive", true},
		{"graceleft", true}, // expired, within the inactive days: login(1) would ask for a new one
		{"future", false},
		{"nobody", false}, // not in the file: another NSS source decides
		{"short", false},  // not an entry
	} {
		err := checkAccount(shadow, tc.name, now)
		if got := err != nil; got != tc.refused || (err != nil && !errors.Is(err, ErrAccount)) {
			t.Errorf("%s: checkAccount = %v, want refused %v", tc.name, err, tc.refused)
		}
	}
	if err := checkAccount(shadow, "broken", now); err == nil || errors.Is(err, ErrAccount) {
		t.Errorf("broken: checkAccount = %v, want an error reading the entry", err)
	}
	if err := checkAccount(filepath.Join(t.TempDir(), "none"), "plain", now); err != nil {
		t.Errorf("no shadow file: checkAccount = %v, want nil", err)
	}
}
