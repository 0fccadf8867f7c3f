package admission

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestParseStartupLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StartupLimit
		bad  bool
	}{
		{in: "10:30:100", want: StartupLimit{10, 30, 100}},
		{in: "5", want: StartupLimit{5, 100, 5}},
		{in: "1:100:1", want: StartupLimit{1, 100, 1}},
		{in: "0", bad: true},
		{in: "10:30", bad: true},
		{in: "10:0:100", bad: true},
		{in: "10:101:100", bad: true},
		{in: "20:30:10", bad: true},
		{in: "a:b:c", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseStartupLimit(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseStartupLimit(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStartupLimit(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseStartupLimit(got.String()); err != nil || back != got {
			t.Errorf("round trip of %v: %v, %v", got, back, err)
		}
	}
}

func TestDropPercent(t *testing.T) {
	l := StartupLimit{Start: 10, Rate: 30, Full: 100}
	for _, tc := range []struct{ n, want int }{
		{0, 0}, {9, 0}, {10, 30}, {55, 65}, {99, 99}, {100, 100}, {1000, 100},
	} {
		if got := l.dropPercent(tc.n); got != tc.want {
			t.Errorf("dropPercent(%d) with %v = %d, want %d", tc.n, l, got, tc.want)
		}
	}
	hard := StartupLimit{Start: 3, Rate: 100, Full: 3}
	if hard.dropPercent(2) != 0 || hard.dropPercent(3) != 100 {
		t.Errorf("hard cap %v: %d at 2, %d at 3", hard, hard.dropPercent(2), hard.dropPercent(3))
	}
}

func TestParsePenalties(t *testing.T) {
	def := DefaultPenalties()
	got, err := ParsePenalties("")
	if err != nil || got != def {
		t.Fatalf("ParsePenalties(\"\") = %v, %v; want the defaults %v", got, err, def)
	}
	got, err = ParsePenalties("authfail:30s, noauth:0 max:1h30m min:2 max-sources:10")
	want := def
	want.AuthFail, want.NoAuth, want.Max, want.Min, want.MaxSources = 30*time.Second, 0, 90*time.Minute, 2*time.Second, 10
	if err != nil || got != want {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if back, err := ParsePenalties(got.String()); err != nil || back != got {
		t.Errorf("round trip of %v: %v, %v", got, back, err)
	}
	off, err := ParsePenalties("off")
	if err != nil || !off.off() || off.String() != "off" {
		t.Errorf("ParsePenalties(off) = %v, %v", off, err)
	}
	for _, bad := range []string{"authfail", "authfail:x", "crash:5s", "authfail:-5s", "max-sources:0"} {
		if _, err := ParsePenalties(bad); err == nil {
			t.Errorf("ParsePenalties(%q) succeeded", bad)
		}
	}
}

func TestParsePrefixList(t *testing.T) {
	got, err := ParsePrefixList("192.0.2.1, 10.0.0.0/8,2001:db8::/32,::ffff:192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.9/32"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.1/8", "host.example", "10.0.0.0/33", "1.2.3.4,"} {
		if _, err := ParsePrefixList(bad); err == nil {
			t.Errorf("ParsePrefixList(%q) succeeded", bad)
		}
	}
	if l, err := ParsePrefixList("none"); err != nil || l != nil {
		t.Errorf("ParsePrefixList(none) = %v, %v", l, err)
	}
}

func TestSourceOf(t *testing.T) {
	bits := NetBlockSize{V4: 32, V6: 64}
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1, Zone: "eth0"}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "invalid Prefix"},
	} {
		if got := sourceOf(tc.addr, bits).String(); got != tc.want {
			t.Errorf("sourceOf(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := sourceOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.7")}, NetBlockSize{V4: 24, V6: 48}).String(); got != "192.0.2.0/24" {
		t.Errorf("with /24: %s", got)
	}
}

// TestPenaltyTable checks sshd's rules: penalties add up to max, are enforced once past min,
// expire, spare exempt addresses, and the table forgets the soonest to expire when full.
func TestPenaltyTable(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	src := func(s string) source {
		return sourceOf(&net.TCPAddr{IP: net.ParseIP(s)}, NetBlockSize{V4: 32, V6: 64})
	}
	a, b := src("192.0.2.1"), src("192.0.2.2")
	tab := newPenaltyTable()
	tab.configure(Penalties{AuthFail: 5 * time.Second, NoAuth: time.Second, GraceExceeded: 10 * time.Second,
		Max: 30 * time.Second, Min: 12 * time.Second, MaxSources: 2}, []netip.Prefix{netip.MustParsePrefix("192.0.2.9/32")})

	// 5 s, then 10 s: not past min yet.
	for range 2 {
		if act, _ := tab.add(a, penaltyAuthFail, now); act {
			t.Fatal("penalty active before reaching min")
		}
		if _, _, refused := tab.refused(a, now); refused {
			t.Fatal("source refused before its penalty reached min")
		}
	}
	// 15 s > 12 s: active.
	act, left := tab.add(a, penaltyAuthFail, now)
	if !act || left != 15*time.Second {
		t.Fatalf("third authfail: active %v for %v, want active for 15s", act, left)
	}
	kind, left, refused := tab.refused(a, now.Add(time.Second))
	if !refused || kind != penaltyAuthFail || left != 14*time.Second {
		t.Fatalf("refused = %v %v %v, want authfail with 14s left", refused, kind, left)
	}
	// Capped at max from now.
	for range 10 {
		tab.add(a, penaltyGraceExceeded, now)
	}
	if _, left, _ := tab.refused(a, now); left != 30*time.Second {
		t.Errorf("penalty %v after many, want the max 30s", left)
	}
	// Expiry.
	if _, _, refused := tab.refused(a, now.Add(30*time.Second)); refused {
		t.Error("still refused at expiry")
	}
	if len(tab.m) != 0 {
		t.Errorf("expired penalty not forgotten: %v", tab.m)
	}
	// Exempt address: never recorded.
	for range 10 {
		tab.add(src("192.0.2.9"), penaltyGraceExceeded, now)
	}
	if _, _, refused := tab.refused(src("192.0.2.9"), now); refused || len(tab.m) != 0 {
		t.Error("exempt address penalized")
	}
	// Full table: the soonest to expire goes.
	tab.add(a, penaltyGraceExceeded, now)                // expires at +10s
	tab.add(b, penaltyNoAuth, now)                       // +1s
	tab.add(src("192.0.2.3"), penaltyGraceExceeded, now) // evicts b
	if _, ok := tab.m[b.prefix]; ok || len(tab.m) != 2 {
		t.Errorf("table after overflow: %v", tab.m)
	}
	// Off: everything forgotten, nothing recorded.
	tab.configure(Penalties{Max: time.Minute}, nil)
	tab.add(a, penaltyAuthFail, now)
	if len(tab.m) != 0 {
		t.Errorf("penalties recorded while off: %v", tab.m)
	}
	// Unix-domain clients have no source.
	if act, _ := tab.add(source{}, penaltyAuthFail, now); act {
		t.Error("penalized a conn without an address")
	}
}
