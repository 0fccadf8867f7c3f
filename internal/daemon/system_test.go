package daemon

import (
	"os"
	"testing"
)

func TestCheckSystemNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root")
	}
	cfg := Config{System: true, AuthorizedKeys: "~/.rlogin/authorized_keys"}
	if err := checkSystem(&cfg); err == nil {
		t.Fatal("checkSystem accepted System mode without root")
	}
}
