package privsep

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// certificateVerifyContent returns a TLS 1.3 server CertificateVerify content with a
// transcript hash of hashLen bytes.
func certificateVerifyContent(hashLen int) []byte {
	b := append(bytes.Repeat([]byte{' '}, 64), certificateVerifyContext...)
	b = append(b, 0)
	h := sha256.Sum256([]byte("transcript"))
	return append(b, bytes.Repeat(h[:], 2)[:hashLen]...)
}

// testKey is a fixed ed25519 key, so seeds and golden encodings stay the same.
func testKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)) }

// validMessages is one or more valid messages of every type, requests first.
func validMessages(t testing.TB) []Message {
	t.Helper()
	key := testKey()
	longEnv := make([]string, session.MaxLocaleVars)
	for i := range longEnv {
		name := "LC_" + strings.Repeat("A", i+1)
		longEnv[i] = name + "=" + strings.Repeat("x", session.MaxLocaleVarLen-len(name)-1)
	}
	return []Message{
		&Sign{Content: certificateVerifyContent(32)},
		&Sign{Content: certificateVerifyContent(48)},
		&Sign{Content: selfSignedTBS(t, key)},
		&Login{Protocol: ProtocolSecure, User: "bob", Term: "xterm-256color",
			Window: session.WindowSize{Rows: 24, Cols: 80, XPixel: 640, YPixel: 480},
			Env:    []string{"LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8"}, ClientKey: key.Public().(ed25519.PublicKey),
			Peer: netip.MustParseAddrPort("192.0.2.1:50000")},
		&Login{Protocol: ProtocolSecure, User: strings.Repeat("a", session.MaxUserLen),
			Term: strings.Repeat("t", session.MaxTermLen), Env: longEnv, ClientKey: key.Public().(ed25519.PublicKey),
			ClientCertificate: bytes.Repeat([]byte{0xc5}, transport.MaxCertificateSize), // the largest LOGIN
			Peer:              netip.MustParseAddrPort("[fe80::1%eth0]:65535")},
		&Login{Protocol: ProtocolClassic, User: "root", ClientUser: "alice", Term: "vt100", Speed: "38400",
			Peer: netip.MustParseAddrPort("[2001:db8::1]:1023")},
		&Login{Protocol: ProtocolClassic, User: "bob", ClientUser: "bob"},
		&Answer{Text: "correct horse \xff battery"},
		&Answer{},
		&Hangup{},
		&Kill{},
		&Signature{Sig: ed25519.Sign(key, []byte("x"))},
		&Prompt{Text: "Password: "},
		&Prompt{Text: "Verification code:\n\t", Echo: true},
		&Info{Text: "Welcome to Debian GNU/Linux — bienvenue.\nLast login: Sun Dec  6\n"},
		&Info{Text: strings.Repeat("m", MaxInfoLen)},
		&Accept{},
		&Refuse{Reason: "permission denied"},
		&Refuse{},
		&Exited{Status: 0},
		&Exited{Status: 255},
		&Exited{Signal: 9},
		&Exited{Signal: 11, CoreDumped: true},
		&Command{session.Command{Line: "tar cf - /srv", PTY: false}},
		&Command{session.Command{Line: strings.Repeat("c", session.MaxCommandLen), PTY: true}},
		&SignalCommand{Signal: syscall.SIGINT},
		&SignalCommand{Signal: syscall.SIGKILL},
		&Pipes{},
		&Challenge{Nonce: bytes.Repeat([]byte{0x5a}, session.KeyProofNonceSize)},
		&Proof{Sig: ed25519.Sign(key, session.KeyProofMessage(bytes.Repeat([]byte{0x5a}, session.KeyProofNonceSize)))},
		&Login{Protocol: ProtocolSecure, User: "root", ClientKey: key.Public().(ed25519.PublicKey), KeyProof: true},
		&Resume{ID: testID(0x11)},
		&Resume{ID: testID(0xee), Reattach: true},
		&List{},
		&Resumable{ID: testID(0x42)},
		&Detached{Cause: "connection lost: read tcp 192.0.2.1:513: connection reset by peer"},
		&Detached{},
		&Attached{Accepted: true, Skipped: 1 << 40},
		&Attached{Accepted: true},
		&Attached{},
		&Sessions{},
		&Sessions{List: []SessionEntry{
			{ID: testID(1), Attached: true, Started: 1765000000, Peer: "192.0.2.1:50000", What: "xterm-256color", PID: 4242},
			{ID: testID(2), Started: 1765000000, Detached: 1765003600, What: "top", PID: 1},
		}},
		&Sessions{List: longSessionList()},
		&Relay{},
		&Attach{Peer: "[2001:db8::1]:1023"},
		&Attach{Reattach: true},
	}
}

// testID is a session id of 16 bytes b.
func testID(b byte) (id [SessionIDLen]byte) {
	copy(id[:], bytes.Repeat([]byte{b}, SessionIDLen))
	return id
}

// longSessionList is the longest list a SESSIONS message holds.
func longSessionList() []SessionEntry {
	list := make([]SessionEntry, MaxListed)
	for i := range list {
		list[i] = SessionEntry{ID: testID(byte(i)), Started: uint64(i + 1), Detached: uint64(i + 2),
			Peer: strings.Repeat("p", maxPeerLen), What: strings.Repeat("w", MaxWhatLen), PID: uint32(i + 1)}
	}
	return list
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range validMessages(t) {
		t.Run(m.Type().String(), func(t *testing.T) {
			b, err := encode(m)
			if err != nil {
				t.Fatal(err)
			}
			decode := decodeReply
			if m.Type().request() {
				decode = decodeRequest
			}
			got, err := decode(b)
			if err != nil {
				t.Fatalf("decode(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("decoded %#v, want %#v", got, m)
			}
			if again, _ := encode(got); !bytes.Equal(again, b) {
				t.Errorf("encodes back as %x, want %x", again, b)
			}
		})
	}
}

func TestLargestLoginFits(t *testing.T) {
	var largest int
	for _, m := range validMessages(t) {
		b, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(b))
	}
	if largest > MaxMessageLen || largest < 60000 {
		t.Errorf("largest message %d bytes, MaxMessageLen %d: the bound or the test is off", largest, MaxMessageLen)
	}
}

// TestDecodeRefuses holds every way a message can break its bounds.
func TestDecodeRefuses(t *testing.T) {
	key := testKey()
	pub := key.Public().(ed25519.PublicKey)
	enc := func(m Message) []byte {
		b := m.appendFields([]byte{byte(m.Type())}) // unchecked: the bytes a hostile peer sends
		return b
	}
	secure := func(f func(*Login)) []byte {
		m := &Login{Protocol: ProtocolSecure, User: "bob", ClientKey: pub}
		f(m)
		return enc(m)
	}
	cv := certificateVerifyContent(32)
	badCV := bytes.Clone(cv)
	badCV[70] = 'X'
	requests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{0x7f}},
		{"a reply", enc(&Accept{})},
		{"trailing byte", append(enc(&Hangup{}), 0)},
		{"short", enc(&Sign{Content: cv})[:20]},
		{"sign other content", enc(&Sign{Content: []byte("hello")})},
		{"sign wrong context", enc(&Sign{Content: badCV})},
		{"sign hash of 20 bytes", enc(&Sign{Content: certificateVerifyContent(48)[:certificateVerifyPrefix+20]})},
		{"sign too long", enc(&Sign{Content: make([]byte, MaxSignLen+1)})},
		{"sign a CA", enc(&Sign{Content: caTBS(t, key)})},
		{"login unknown protocol", secure(func(m *Login) { m.Protocol = 3 })},
		{"login bad user", secure(func(m *Login) { m.User = "-froot" })},
		{"login empty user", secure(func(m *Login) { m.User = "" })},
		{"login term with slash", secure(func(m *Login) { m.Term = "../../x" })},
		{"login bad env", secure(func(m *Login) { m.Env = []string{"LD_PRELOAD=/tmp/x.so"} })},
		{"login env twice", secure(func(m *Login) { m.Env = []string{"LANG=C", "LANG=de"} })},
		{"login short key", secure(func(m *Login) { m.ClientKey = pub[:31] })},
		{"login no key", secure(func(m *Login) { m.ClientKey = nil })},
		{"login secure with client user", secure(func(m *Login) { m.ClientUser = "bob" })},
		{"login classic with key", enc(&Login{Protocol: ProtocolClassic, User: "bob", ClientUser: "bob", ClientKey: pub})},
		{"login classic without client user", enc(&Login{Protocol: ProtocolClassic, User: "bob"})},
		{"login classic bad speed", enc(&Login{Protocol: ProtocolClassic, User: "bob", ClientUser: "bob", Speed: "96a"})},
		{"login peer not canonical", append(secure(func(*Login) {})[:len(secure(func(*Login) {}))-2], append([]byte{0, 13}, "01.2.3.4:5000"...)...)},
		{"login peer without port", append(secure(func(*Login) {})[:len(secure(func(*Login) {}))-2], append([]byte{0, 7}, "1.2.3.4"...)...)},
		{"answer with newline", enc(&Answer{Text: "pw\n"})},
		{"answer with NUL", enc(&Answer{Text: "p\x00w"})},
		{"answer too long", enc(&Answer{Text: strings.Repeat("x", MaxAnswerLen+1)})},
		{"hangup with a field", append(enc(&Hangup{}), 1, 2)},
		{"command empty", enc(&Command{})},
		{"command with NUL", enc(&Command{session.Command{Line: "a\x00b"}})},
		{"command pty byte 2", []byte{byte(TypeCommand), 2, 0, 1, 'x'}},
		{"command too long", append([]byte{byte(TypeCommand), 0, 0xff, 0xff}, strings.Repeat("c", 1<<16)...)},
		{"signal SIGSTOP", enc(&SignalCommand{Signal: syscall.SIGSTOP})},
		{"signal 0", enc(&SignalCommand{})},
		{"signal 200", []byte{byte(TypeSignal), 200}},
		{"resume short id", enc(&Resume{})[:10]},
		{"resume reattach 2", append(enc(&Resume{})[:1+SessionIDLen], 2)},
		{"list with a field", append(enc(&List{}), 0)},
		{"resumable short", enc(&Resumable{})[:SessionIDLen]},
		{"detached cause with escape", enc(&Detached{Cause: "lost\x1b[2J"})},
		{"detached cause too long", enc(&Detached{Cause: strings.Repeat("c", MaxCauseLen+1)})},
		{"attached refused with skipped", enc(&Attached{Skipped: 1})},
		{"attached accepted 2", append([]byte{byte(TypeAttached), 2}, make([]byte, 8)...)},
	}
	for _, tc := range requests {
		t.Run("request/"+tc.name, func(t *testing.T) {
			if m, err := decodeRequest(tc.b); err == nil {
				t.Errorf("decodeRequest(%x) = %#v, want an error", tc.b, m)
			}
		})
	}
	replies := []struct {
		name string
		b    []byte
	}{
		{"a request", enc(&Hangup{})},
		{"unknown type", []byte{0xff}},
		{"short signature", enc(&Signature{Sig: make([]byte, 63)})},
		{"prompt with escape", enc(&Prompt{Text: "\x1b[2JPassword: "})},
		{"prompt with bidi override", enc(&Prompt{Text: "Pass\u202eword"})},
		{"prompt echo 2", []byte{byte(TypePrompt), 2, 0, 0}},
		{"prompt not UTF-8", enc(&Prompt{Text: "\xffPassword"})},
		{"info too long", enc(&Info{Text: strings.Repeat("m", MaxInfoLen+1)})},
		{"refuse with newline", enc(&Refuse{Reason: "a\nb"})},
		{"refuse with C1", enc(&Refuse{Reason: "a\u009bb"})},
		{"exited status with core", []byte{byte(TypeExited), 0, 1, 1}},
		{"exited signal 0", []byte{byte(TypeExited), 1, 0, 0}},
		{"exited signal 65", []byte{byte(TypeExited), 1, 65, 0}},
		{"exited kind 2", []byte{byte(TypeExited), 2, 1, 0}},
		{"exited flags 2", []byte{byte(TypeExited), 1, 9, 2}},
		{"accept with a field", []byte{byte(TypeAccept), 0}},
		{"sessions too many", enc(&Sessions{List: append(longSessionList(), longSessionList()[0])})},
		{"sessions count beyond", []byte{byte(TypeSessions), 0, 1}},
		{"session without start", enc(&Sessions{List: []SessionEntry{{PID: 1}}})},
		{"session attached with detach time", enc(&Sessions{List: []SessionEntry{{Attached: true, Started: 1, Detached: 2, PID: 1}}})},
		{"session detached without detach time", enc(&Sessions{List: []SessionEntry{{Started: 1, PID: 1}}})},
		{"session without pid", enc(&Sessions{List: []SessionEntry{{Attached: true, Started: 1}}})},
		{"session peer too long", enc(&Sessions{List: []SessionEntry{{Attached: true, Started: 1, PID: 1, Peer: strings.Repeat("p", maxPeerLen+1)}}})},
		{"session what with newline", enc(&Sessions{List: []SessionEntry{{Attached: true, Started: 1, PID: 1, What: "a\nb"}}})},
		{"session what too long", enc(&Sessions{List: []SessionEntry{{Attached: true, Started: 1, PID: 1, What: strings.Repeat("w", MaxWhatLen+1)}}})},
		{"relay with a field", []byte{byte(TypeRelay), 0}},
		{"attach peer with escape", enc(&Attach{Peer: "\x1b]0;x\x07"})},
		{"attach reattach 2", []byte{byte(TypeAttach), 2, 0, 0}},
	}
	for _, tc := range replies {
		t.Run("reply/"+tc.name, func(t *testing.T) {
			if m, err := decodeReply(tc.b); err == nil {
				t.Errorf("decodeReply(%x) = %#v, want an error", tc.b, m)
			}
		})
	}
}

// TestEncodeRefuses: a sender cannot send what the receiver would refuse.
func TestEncodeRefuses(t *testing.T) {
	for _, m := range []Message{
		&Sign{Content: []byte("anything")},
		&Login{Protocol: ProtocolSecure, User: "bob"},
		&Answer{Text: "a\nb"},
		&Prompt{Text: "\x07"},
		&Exited{Status: 256},
		&Exited{Signal: 9, Status: 1},
		&Exited{Status: 1, CoreDumped: true},
		&Signature{},
		&Command{},
		&SignalCommand{Signal: syscall.SIGSEGV},
		&Detached{Cause: "a\nb"},
		&Attached{Skipped: 3},
		&Attach{Peer: strings.Repeat("p", maxPeerLen+1)},
		&Sessions{List: []SessionEntry{{Started: 1}}},
	} {
		if b, err := encode(m); err == nil {
			t.Errorf("encode(%#v) = %x, want an error", m, b)
		}
	}
}
