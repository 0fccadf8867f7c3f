package session

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// clientMessages is a sample of everything a client sends after its version byte; big adds a
// frame bigger than a bufio buffer (but seeds for the fuzzer stay small).
func clientMessages(big bool) []message {
	bulk := []byte{0, 1, 2, 0xfe, 0xff}
	if big {
		bulk = bytes.Repeat(bulk, 20000)
	}
	return []message{
		{typ: frameLogin, req: &Request{User: "bob", Term: "xterm-256color", Window: WindowSize{Rows: 24, Cols: 80, XPixel: 640, YPixel: 480},
			Env: []string{"LANG=C.UTF-8", "LC_CTYPE=en_US.UTF-8", "LC_ALL="}, Capabilities: []string{"resume", "exec"}}},
		{typ: frameData, data: []byte("ls -l\r")},
		{typ: frameData, data: []byte("\xff\xffss\x00\x18\x00\x50\x00\x00\x00\x00")},
		{typ: frameData, data: []byte{}},
		{typ: frameWindow, window: WindowSize{Rows: 50, Cols: 132}},
		{typ: frameCredit, credit: creditBatch},
		{typ: frameData, data: bulk},
		{typ: frameEOF},
	}
}

// serverMessages is a sample of everything a server sends after its version byte.
func serverMessages(big bool) []message {
	bulk := []byte("flood ")
	if big {
		bulk = bytes.Repeat(bulk, 10000)
	}
	return []message{
		{typ: frameAccept, caps: []string{"resume"}},
		{typ: frameData, data: []byte("$ ")},
		{typ: frameData, data: bulk},
		{typ: frameFlush},
		{typ: frameData, data: []byte("^C\r\n$ ")},
		{typ: frameCredit, credit: 1},
		{typ: frameExit, exit: ExitError{Signal: "SEGV", CoreDumped: true}},
	}
}

func encodeStream(t testing.TB, ms []message) []byte {
	t.Helper()
	b := []byte{version}
	for i := range ms {
		var err error
		if b, err = appendMessage(b, &ms[i]); err != nil {
			t.Fatalf("encode %v: %v", ms[i].typ, err)
		}
	}
	return b
}

// randomSplitReader returns reads of 1 to 9 bytes.
type randomSplitReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (r *randomSplitReader) Read(b []byte) (int, error) {
	return r.r.Read(b[:min(len(b), 1+r.rng.IntN(9))])
}

// TestParseSplit decodes streams of every frame type, split at every byte and at random, through
// the readers the client and server use.
func TestParseSplit(t *testing.T) {
	for _, dir := range []struct {
		name    string
		ms      []message
		allowed func(i int) func(frameType) bool
	}{
		{"client to server", clientMessages(true), func(i int) func(frameType) bool {
			if i == 0 {
				return isLoginFrame
			}
			return isClientFrame
		}},
		{"server to client", serverMessages(true), func(i int) func(frameType) bool {
			if i == 0 {
				return isAnswerFrame
			}
			return isServerFrame
		}},
	} {
		stream := encodeStream(t, dir.ms)
		for _, split := range []struct {
			name string
			r    func() io.Reader
		}{
			{"whole", func() io.Reader { return bytes.NewReader(stream) }},
			{"one byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
			{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
			{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
			{"random", func() io.Reader {
				return &randomSplitReader{bytes.NewReader(stream), rand.New(rand.NewPCG(uint64(len(stream)), 9))}
			}},
		} {
			t.Run(dir.name+"/"+split.name, func(t *testing.T) {
				br := bufio.NewReaderSize(split.r(), 16)
				if v, err := br.ReadByte(); err != nil || v != version {
					t.Fatalf("version %d, %v", v, err)
				}
				fr := frameReader{r: br}
				for i, want := range dir.ms {
					m, err := fr.readMessage(dir.allowed(i))
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if !reflect.DeepEqual(m, want) {
						t.Fatalf("message %d: %+v\nwant %+v", i, m, want)
					}
				}
				if _, err := fr.readMessage(dir.allowed(1)); err != io.EOF {
					t.Errorf("after the last frame: %v, want io.EOF", err)
				}
			})
		}
	}
}

// TestParseErrors: broken input gives a clear error, never a panic.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"cut header", []byte{byte(frameData), 0}, "unexpected EOF"},
		{"cut payload", []byte{byte(frameData), 0, 0, 3, 'a'}, "unexpected EOF"},
		{"oversized", []byte{byte(frameData), 0xff, 0xff, 0xff}, "protocol error: DATA frame of 16777215 bytes exceeds the limit of 131072"},
		{"unknown", []byte{0x7f, 0, 0, 0}, "protocol error: unknown frame type 0x7f"},
		{"wrong direction", []byte{byte(frameFlush), 0, 0, 0}, "protocol error: unexpected FLUSH frame"},
		{"long window", []byte{byte(frameWindow), 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "protocol error: bad WINDOW frame: 1 unexpected bytes at the end of the payload"},
		{"short credit", []byte{byte(frameCredit), 0, 0, 2, 0, 1}, "protocol error: bad CREDIT frame: payload is too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := frameReader{r: bytes.NewReader(tc.input)}
			_, err := fr.readMessage(isClientFrame)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	// Unknown optional frames are skipped, also at the end.
	fr := frameReader{r: bytes.NewReader([]byte{0x80, 0, 0, 2, 1, 2, 0xff, 0, 0, 0, byte(frameEOF), 0, 0, 0, 0x90, 0, 0, 0})}
	if m, err := fr.readMessage(isClientFrame); err != nil || m.typ != frameEOF {
		t.Errorf("got %v, %v; want EOF", m.typ, err)
	}
	if _, err := fr.readMessage(isClientFrame); err != io.EOF {
		t.Errorf("got %v, want io.EOF", err)
	}
}

// TestExitEncoding checks EXIT's kinds, bounds and exit codes.
func TestExitEncoding(t *testing.T) {
	for _, tc := range []struct {
		e       ExitError
		payload string
		code    int
	}{
		{ExitError{Status: 0}, "\x00\x00", 0},
		{ExitError{Status: 255}, "\x00\xff", 255},
		{ExitError{Signal: "HUP"}, "\x01\x00HUP", 129},
		{ExitError{Signal: "SEGV", CoreDumped: true}, "\x01\x01SEGV", 139},
		{ExitError{Signal: "34"}, "\x01\x0034", 162},
		{ExitError{Signal: "NOSUCHSIG"}, "\x01\x00NOSUCHSIG", 255},
	} {
		b, err := appendExit(nil, &tc.e)
		if err != nil || string(b) != tc.payload {
			t.Errorf("%+v: encoded %q, %v; want %q", tc.e, b, err, tc.payload)
		}
		if e, err := decodeExit([]byte(tc.payload)); err != nil || e != tc.e {
			t.Errorf("%q: decoded %+v, %v", tc.payload, e, err)
		}
		if code := tc.e.ExitCode(); code != tc.code {
			t.Errorf("%+v: ExitCode %d, want %d", tc.e, code, tc.code)
		}
	}
	for _, e := range []ExitError{{Status: 256}, {Status: -1}, {Status: 1, CoreDumped: true}, {Signal: "int"}, {Signal: "SIGINT\n"}, {Signal: "INT", Status: 2}} {
		if _, err := appendExit(nil, &e); err == nil {
			t.Errorf("%+v: encoded", e)
		}
	}
	for _, p := range []string{"", "\x00", "\x00\x00\x00", "\x02\x00", "\x01\x00", "\x01\x02INT", "\x01\x00int"} {
		if _, err := decodeExit([]byte(p)); err == nil {
			t.Errorf("%q: decoded", p)
		}
	}
}

// TestReasons checks that reasons are cleaned to fit their bounds.
func TestReasons(t *testing.T) {
	for _, s := range []string{"", "service stopping", "héllo wörld", "\x1b[2J", "a\nb", "\xff\xfe", "\u202egnp.exe", "\u0085",
		strings.Repeat("é", 600), strings.Repeat("x", 2000)} {
		c := cleanReason(s)
		if err := checkReason(c); err != nil {
			t.Errorf("cleanReason(%q) = %q: %v", s, c, err)
		}
		if !utf8.ValidString(c) || len(c) > maxReason {
			t.Errorf("cleanReason(%q) = %q", s, c)
		}
		if checkReason(s) == nil && c != s {
			t.Errorf("cleanReason changed the valid %q to %q", s, c)
		}
	}
	if got := cleanReason("a\x1bb\u202ec"); got != "a?b?c" {
		t.Errorf("got %q", got)
	}
	if got := string(appendVersionRefusal(nil, "bad\x00\xffline\n")); got != "\x00bad??line?\n" {
		t.Errorf("version refusal %q", got)
	}
	if got := appendVersionRefusal(nil, strings.Repeat("x", 5000)); len(got) != 1+maxRefusal+1 {
		t.Errorf("version refusal of %d bytes", len(got))
	}
}

// TestLocaleEnv checks which variables a client sends: LANG and LC_* that fit the bounds, each
// name once, so that the request it makes is always valid.
func TestLocaleEnv(t *testing.T) {
	got := LocaleEnv([]string{"PATH=/bin", "LANG=C", "LANGUAGE=en", "LC_ALL=C.UTF-8", "LC_=x", "LC_ctype=x", "LC_MESSAGES", "XLANG=1", "LC_PAPER=A4",
		"LC_IDENTIFICATION=caf\u00e9", "LANG=en_US.UTF-8", "LC_TERMINAL=iTerm2\t", "LC_NAME=" + strings.Repeat("x", MaxLocaleVarLen), "LC_TIME=C"})
	if want := []string{"LANG=C", "LC_ALL=C.UTF-8", "LC_PAPER=A4", "LC_TIME=C"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, env := range [][]string{
		{"LANG=C.UTF-8", "LC_IDENTIFICATION=caf\u00e9"},
		{"LANG=C.UTF-8", "LANG=en_US.UTF-8"},
		{"LC_TERMINAL=iTerm2\t"},
		slices.Repeat([]string{"LC_A=C", "LC_B=C", "LC_C=C"}, 30),
	} {
		r := Request{User: "bob", Term: "xterm", Env: LocaleEnv(env)}
		if _, err := appendRequest(nil, &r); err != nil {
			t.Errorf("Env %q: the request cannot be sent: %v", env, err)
		}
	}
	var many []string
	for i := range MaxLocaleVars + 1 {
		many = append(many, "LC_X"+strings.Repeat("Y", i)+"=C")
	}
	if got := LocaleEnv(many); len(got) != MaxLocaleVars {
		t.Errorf("%d variables kept of %d, want %d", len(got), len(many), MaxLocaleVars)
	}
}

// TestMaxRequest: the largest request fits in a frame.
func TestMaxRequest(t *testing.T) {
	r := largestRequest()
	b, err := appendMessage(nil, &message{typ: frameLogin, req: &r})
	if err != nil {
		t.Fatal(err)
	}
	fr := frameReader{r: bytes.NewReader(b), limit: maxLogin}
	m, err := fr.readMessage(isLoginFrame)
	if err != nil || !reflect.DeepEqual(*m.req, r) {
		t.Fatalf("round trip: %v", err)
	}
	t.Logf("largest LOGIN: %d bytes", len(b))
}

func TestErrorsAs(t *testing.T) {
	var err error = &RefusedError{Reason: "no"}
	var refused *RefusedError
	if !errors.As(err, &refused) || err.Error() != "session: login refused: no" {
		t.Error(err)
	}
	err = &ClosedError{Reason: "service stopping"}
	if err.Error() != "session: closed by server: service stopping" {
		t.Error(err)
	}
	err = &ExitError{Signal: "SEGV", CoreDumped: true}
	if err.Error() != "session: remote shell killed by signal SEGV (core dumped)" {
		t.Error(err)
	}
}
