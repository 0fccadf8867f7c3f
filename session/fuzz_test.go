package session

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// bytesConn is a net.Conn that reads fixed input and collects what is written.
type bytesConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	w      bytes.Buffer
	closed bool
}

func newBytesConn(input []byte) *bytesConn { return &bytesConn{r: bytes.NewReader(input)} }

func (c *bytesConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(b)
}

func (c *bytesConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.w.Write(b)
}

func (c *bytesConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *bytesConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// checkRoundTrip checks that a decoded frame encodes to the same bytes and decodes to the same
// message: the encoding is canonical.
func checkRoundTrip(t *testing.T, typ frameType, payload []byte, m message, allowed func(frameType) bool) {
	t.Helper()
	enc, err := appendMessage(nil, &m)
	if err != nil {
		t.Fatalf("a decoded %v does not encode: %v", typ, err)
	}
	if want := appendFrame(nil, typ, payload); !bytes.Equal(enc, want) {
		t.Fatalf("%v re-encoded as %x, was %x", typ, enc, want)
	}
	fr := frameReader{r: bytes.NewReader(enc)}
	m2, err := fr.readMessage(allowed)
	if len(m.data) == 0 && len(m2.data) == 0 {
		m.data, m2.data = nil, nil // an empty payload may be nil or not
	}
	if err != nil || !reflect.DeepEqual(m, m2) {
		t.Fatalf("%v: decode(encode(m)) = %+v, %v; want %+v", typ, m2, err, m)
	}
}

// parseStream decodes a stream as the receiving side does: a version byte, a first frame allowed
// by first, then frames allowed by rest. It returns the decoded messages.
func parseStream(t *testing.T, data []byte, first, rest func(frameType) bool) []message {
	br := bufio.NewReader(bytes.NewReader(data))
	if v, err := br.ReadByte(); err != nil || v != version {
		if err == nil && v == 0 {
			if text, err := readVersionRefusal(br); err == nil {
				if got := appendVersionRefusal(nil, text); !bytes.Equal(got, data[:len(got)]) {
					t.Fatalf("refusal %q re-encoded as %q", data[:len(got)], got)
				}
			}
		}
		return nil
	}
	fr := frameReader{r: br}
	var ms []message
	allowed := first
	for {
		typ, p, err := fr.next()
		if err != nil {
			return ms
		}
		m, skip, err := decodeFrame(typ, p, allowed)
		if err != nil {
			return ms
		}
		if skip {
			continue
		}
		checkRoundTrip(t, typ, p, m, allowed)
		m.data = bytes.Clone(m.data)
		ms = append(ms, m)
		allowed = rest
	}
}

// FuzzClientStream feeds a server arbitrary client input: the parser and ServerConn.ReadRequest
// must not panic, and what decodes must round-trip.
func FuzzClientStream(f *testing.F) {
	for _, seed := range clientSeeds(f) {
		f.Add(seed.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parseStream(t, data, isLoginFrame, isClientFrame)

		s := NewServerConn(newBytesConn(data))
		s.RunsCommands = true
		req, err := s.ReadRequest()
		if err != nil {
			return
		}
		if err := req.validate(); err != nil {
			t.Fatalf("ReadRequest returned an invalid request: %v", err)
		}
		login := *req
		login.Command, login.Resume, login.List = nil, nil, false // the COMMAND, RESUME and LIST frames
		b, err := appendMessage(nil, &message{typ: frameLogin, req: &login})
		if err != nil {
			t.Fatalf("request %+v does not encode: %v", req, err)
		}
		fr := frameReader{r: bytes.NewReader(b)}
		if m, err := fr.readMessage(isLoginFrame); err != nil || !reflect.DeepEqual(m.req, &login) {
			t.Fatalf("request %+v round-trips to %+v, %v", req, m.req, err)
		}
		if req.Command != nil {
			checkCommandRoundTrip(t, req.Command)
		}
		if sig, err := s.Challenge(make([]byte, KeyProofNonceSize)); err == nil && len(sig) != ed25519.SignatureSize {
			t.Fatalf("Challenge returned a proof of %d bytes", len(sig))
		}
		_ = s.Refuse("fuzz")
	})
}

// FuzzServerStream feeds a client arbitrary server input: the parser and a whole Client must not
// panic, and what decodes must round-trip.
func FuzzServerStream(f *testing.F) {
	for _, seed := range serverSeeds(f) {
		f.Add(seed.data)
	}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseStream(t, data, isAnswerFrame, withFlushKeys(isServerFrame))

		for _, req := range []Request{bob, {User: "bob", Command: &Command{Line: "cat"}}} {
			c := NewClient(newBytesConn(data), req)
			c.capabilities = []string{"x-resume"}
			c.OnFlushKey = func() {}        // it offers flushkeys, and takes FLUSHKEYS
			c.Signer = key                  // it answers a CHALLENGE
			_ = c.Run(context.Background()) // any result but a panic or a hang
		}
		_, _ = ListSessions(context.Background(), newBytesConn(data), bob)
		c := NewClient(newBytesConn(data), Request{User: "bob", Resume: &ResumeRequest{ID: SessionID{1}}})
		_ = c.Run(context.Background())
	})
}

type seed struct {
	name string
	data []byte
}

func clientSeeds(t testing.TB) []seed {
	login := func(caps ...string) []byte {
		return encodeStream(t, []message{{typ: frameLogin, req: &Request{User: "bob", Term: "xterm-256color",
			Window: WindowSize{Rows: 24, Cols: 80}, Env: []string{"LANG=C.UTF-8"}, Capabilities: caps}}})
	}
	badUser := appendString16(nil, "-froot")
	badUser = appendString16(badUser, "xterm")
	badUser = append(badUser, make([]byte, 10)...)
	return []seed{
		{"session", encodeStream(t, clientMessages(false))},
		{"login", login()},
		{"login-caps", append(login("resume", "exec"), 0x81, 0, 0, 1, 'x', byte(frameData), 0, 0, 2, 'h', 'i')},
		{"command", append(login("flow2", "exec"), encodeStream(t, []message{{typ: frameCommand, cmd: &Command{Line: "tar x -C 'dst dir'"}},
			{typ: frameData, data: []byte("in")}, {typ: frameSignal, signal: "INT"}, {typ: frameEOF}})...)},
		{"command-twice", append(login("exec"), encodeStream(t, []message{{typ: frameCommand, cmd: &Command{Line: "a", PTY: true}},
			{typ: frameCommand, cmd: &Command{Line: "b"}}})...)},
		{"version-7", append([]byte{7}, login()[1:]...)},
		{"bad-user", appendFrame([]byte{version}, frameLogin, badUser)},
		{"oversized", []byte{version, byte(frameLogin), 0xff, 0xff, 0xff}},
		{"keyproof", append(login("keyproof"), encodeStream(t, []message{{typ: frameProof, data: make([]byte, ed25519.SignatureSize)}})[1:]...)},
		{"keyproof-short", append(login("keyproof"), byte(frameProof), 0, 0, 1, 0)},
		{"resume", append(login("resume", "attach"), encodeStream(t, []message{{typ: frameResume, resume: &ResumeRequest{ID: SessionID{1}, Secret: make([]byte, ResumeSecretSize), received: 5}},
			{typ: frameData, data: []byte("in")}})[1:]...)},
		{"list", append(login("resume", "attach"), encodeStream(t, []message{{typ: frameList}})[1:]...)},
		{"received", append(login("resume", "flow2"), encodeStream(t, []message{{typ: frameReceived, received: 0},
			{typ: frameCredit, credit: 1 << 20}, {typ: frameReceived, received: 1 << 16}})[1:]...)},
	}
}

func serverSeeds(t testing.TB) []seed {
	accept := message{typ: frameAccept}
	challenge := message{typ: frameChallenge, data: bytes.Repeat([]byte{7}, KeyProofNonceSize)}
	return []seed{
		{"session", encodeStream(t, serverMessages(false))},
		{"exit-7", encodeStream(t, []message{accept, {typ: frameData, data: []byte("bye\r\n")}, {typ: frameExit, exit: ExitError{Status: 7}}})},
		{"exit-int", encodeStream(t, []message{accept, {typ: frameExit, exit: ExitError{Signal: "INT"}}})},
		{"close", encodeStream(t, []message{accept, {typ: frameData, data: []byte("x")}, {typ: frameClose, text: "service stopping"}})},
		{"refuse", encodeStream(t, []message{{typ: frameRefuse, text: "permission denied"}})},
		{"version-refusal", appendVersionRefusal(nil, "unsupported protocol version 1; this server speaks 2")},
		{"optional-frame", append(encodeStream(t, []message{accept}), 0xc0, 0, 0, 0)},
		{"stderr", encodeStream(t, []message{{typ: frameAccept, caps: []string{capExec}}, {typ: frameStderr, data: []byte("err\n")}, {typ: frameExit, exit: ExitError{Status: 5}}})},
		{"challenge", encodeStream(t, []message{challenge, {typ: frameAccept, caps: []string{capKeyProof}}, {typ: frameExit}})},
		{"challenge-twice", encodeStream(t, []message{challenge, challenge, accept})},
		{"resumable", encodeStream(t, append([]message{{typ: frameAccept, caps: []string{capResume}}}, resumeMessages()[0], message{typ: frameData, data: []byte("$ ")}))},
		{"resumed", encodeStream(t, []message{{typ: frameAccept, caps: []string{capResume, capAttach}}, resumeMessages()[3], resumeMessages()[0]})},
		{"sessions", encodeStream(t, resumeMessages()[6:7])},
		{"flushkeys", encodeStream(t, []message{{typ: frameAccept, caps: []string{capFlushKeys}}, {typ: frameFlushKeys, data: []byte(defaultSignalChars)},
			{typ: frameData, data: []byte("$ ")}, {typ: frameFlushKeys}, {typ: frameData, data: []byte("\x1b[?1049h")}})},
		{"flushkeys-long", append(encodeStream(t, []message{{typ: frameAccept, caps: []string{capFlushKeys}}}), byte(frameFlushKeys), 0, 0, 4, 3, 0x1c, 0x1a, 3)},
	}
}

// TestFuzzSeeds keeps testdata/fuzz in step with the encoder (go test -run TestFuzzSeeds -update
// rewrites it) and checks that the seeds decode.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string][]seed{"FuzzClientStream": clientSeeds(t), "FuzzServerStream": serverSeeds(t), "FuzzCommand": commandSeeds(), "FuzzUnmarshalRequest": unmarshalSeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		var want []string
		for _, s := range seeds {
			want = append(want, s.name)
			path := filepath.Join(dir, s.name)
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("%s is missing or stale (%v): run go test -run TestFuzzSeeds -update", path, err)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, e := range entries {
			have = append(have, e.Name())
		}
		sort.Strings(want)
		if !reflect.DeepEqual(have, want) && !*update {
			t.Errorf("%s holds %q, want %q", dir, have, want)
		}
	}
	// The seeds are real sessions: they decode in full.
	if ms := parseStream(t, encodeStream(t, clientMessages(false)), isLoginFrame, isClientFrame); len(ms) != len(clientMessages(false)) {
		t.Errorf("client seed decodes to %d messages", len(ms))
	}
	if ms := parseStream(t, encodeStream(t, serverMessages(false)), isAnswerFrame, isServerFrame); len(ms) != len(serverMessages(false)) {
		t.Errorf("server seed decodes to %d messages", len(ms))
	}
}
