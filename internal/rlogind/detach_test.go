package rlogind

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestDetachOptions: the defaults, the flags and keywords, 0 for off, the size suffixes, and
// bad values.
func TestDetachOptions(t *testing.T) {
	home := t.TempDir()
	conf := writeConfig(t, home, "DetachTimeout 8h\ndetach_buffer 64KiB\n")
	for _, tc := range []struct {
		args        []string
		wantTimeout time.Duration
		wantBuffer  int
	}{
		{nil, time.Hour, 1 << 20},
		{[]string{"-detach-timeout", "90s", "-detach-buffer", "4M"}, 90 * time.Second, 4 << 20},
		{[]string{"-detach-timeout", "0"}, -1, 1 << 20},
		{[]string{"-detach-buffer", "2048"}, time.Hour, 2048},
		{[]string{"-detach-buffer", "3K"}, time.Hour, 3 << 10},
		{[]string{"-detach-buffer", "1GiB"}, time.Hour, 1 << 30},
		{[]string{"-config", conf}, 8 * time.Hour, 64 << 10},
		{[]string{"-config", conf, "-detach-timeout", "0"}, -1, 64 << 10},
	} {
		o, err := loadOptions(tc.args, io.Discard, home, "none")
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		cfg := o.serverConfig(nil, home, nil)
		if cfg.DetachTimeout != tc.wantTimeout || cfg.DetachBuffer != tc.wantBuffer {
			t.Errorf("%q: DetachTimeout %v, DetachBuffer %d; want %v, %d", tc.args, cfg.DetachTimeout, cfg.DetachBuffer, tc.wantTimeout, tc.wantBuffer)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-detach-timeout", "-1s"}, "must not be negative"},
		{[]string{"-detach-timeout", "500ms"}, "want at least 1s, or 0 for off"},
		{[]string{"-detach-timeout", "1000h"}, "want at most 720h"},
		{[]string{"-detach-timeout", "later"}, "parse error"},
		{[]string{"-detach-buffer", "1023"}, "want a size from 1KiB to 1GiB"},
		{[]string{"-detach-buffer", "2G"}, "want a size from 1KiB to 1GiB"},
		{[]string{"-detach-buffer", "-1M"}, "want a size from 1KiB to 1GiB"},
		{[]string{"-detach-buffer", "1MB"}, "want a size from 1KiB to 1GiB"},
		{[]string{"-detach-buffer", "99999999999999999999K"}, "want a size from 1KiB to 1GiB"},
	} {
		if _, err := loadOptions(tc.args, io.Discard, home, "none"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestByteSizeString: -h shows sizes as they are written.
func TestByteSizeString(t *testing.T) {
	for n, want := range map[byteSize]string{1 << 20: "1MiB", 64 << 10: "64KiB", 1536 << 10: "1536KiB", 2000: "2000"} {
		if got := n.String(); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
		var back byteSize
		if err := back.Set(want); err != nil || back != n {
			t.Errorf("%q read back as %d, %v", want, back, err)
		}
	}
}
