package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// resumeMessages is a sample of every frame of capabilities resume and attach.
func resumeMessages() []message {
	id := SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []message{
		{typ: frameResumable, resumable: &resumable{id: id, secret: [ResumeSecretSize]byte{0xaa, 31: 0x55}, timeout: 3600}},
		{typ: frameResume, resume: &ResumeRequest{ID: id, Secret: bytes.Repeat([]byte{7}, ResumeSecretSize), received: 1 << 40}},
		{typ: frameResume, resume: &ResumeRequest{ID: id}},
		{typ: frameResumed, resumed: resumeOffsets{inReceived: 5, outFrom: 1 << 33, skipped: 1 << 20}},
		{typ: frameList},
		{typ: frameSessions, sessions: []SessionInfo{}},
		{typ: frameSessions, sessions: []SessionInfo{
			{ID: id, Attached: true, Started: time.Unix(1700000000, 0), Peer: "192.0.2.1:513", What: "xterm-256color", PID: 4242},
			{ID: SessionID{9}, Started: time.Unix(1700000001, 0), Detached: time.Unix(1700000100, 0), Peer: "[2001:db8::1]:40000", What: "make -j8", PID: 1 << 31},
		}},
		{typ: frameReceived, received: 1<<40 + 3},
	}
}

// TestResumeFrames: every resume frame round-trips, and its bounds are checked both ways.
func TestResumeFrames(t *testing.T) {
	for _, m := range resumeMessages() {
		b, err := appendMessage(nil, &m)
		if err != nil {
			t.Fatalf("encode %v: %v", m.typ, err)
		}
		checkRoundTrip(t, m.typ, b[headerLen:], m, func(frameType) bool { return true })
	}
	long := strings.Repeat("x", maxSessionText+1)
	for _, tc := range []struct {
		name string
		m    message
		want string
	}{
		{"short secret", message{typ: frameResume, resume: &ResumeRequest{Secret: []byte("short")}}, "resume secret of 5 bytes, not 0 or 32"},
		{"no timeout", message{typ: frameResumable, resumable: &resumable{}}, "RESUMABLE without a detach timeout"},
		{"long peer", message{typ: frameSessions, sessions: []SessionInfo{{Peer: long}}}, "peer address of 129 bytes exceeds the limit of 128"},
		{"control byte", message{typ: frameSessions, sessions: []SessionInfo{{What: "vi\x1b[2J"}}}, "what a session runs has a forbidden byte 0x1b"},
		{"too many", message{typ: frameSessions, sessions: make([]SessionInfo, maxSessionsListed+1)}, "257 sessions exceed the limit of 256"},
	} {
		if _, err := appendMessage(nil, &tc.m); err == nil || err.Error() != tc.want {
			t.Errorf("%s: encode: %v, want %s", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"resume secret length", appendFrame(nil, frameResume, append(make([]byte, 16), 5, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0)), "bad RESUME frame: resume secret of 5 bytes, not 0 or 32"},
		{"resume long", appendFrame(nil, frameResume, make([]byte, 16+1+8+1)), "bad RESUME frame: 1 unexpected bytes at the end of the payload"},
		{"resumable zero timeout", appendFrame(nil, frameResumable, make([]byte, 52)), "bad RESUMABLE frame: detach timeout of 0 seconds"},
		{"resumed skipped", appendResumed(nil, resumeOffsets{outFrom: 1, skipped: 2}), "bad RESUMED frame: 2 bytes skipped before offset 1"},
		{"list payload", appendFrame(nil, frameList, []byte{0}), "bad LIST frame: 1 bytes of payload"},
		{"received long", appendFrame(nil, frameReceived, make([]byte, 9)), "bad RECEIVED frame: 1 unexpected bytes at the end of the payload"},
		{"sessions state", appendFrame(nil, frameSessions, append([]byte{0, 1}, append(make([]byte, 16), 2)...)), "bad SESSIONS frame: session state 2 is not 0 or 1"},
		{"sessions cut", appendFrame(nil, frameSessions, []byte{0, 1}), "bad SESSIONS frame: payload is too short"},
	} {
		fr := frameReader{r: bytes.NewReader(tc.frame)}
		if _, err := fr.readMessage(func(frameType) bool { return true }); err == nil || err.Error() != "protocol error: "+tc.want {
			t.Errorf("%s: %v\nwant protocol error: %s", tc.name, err, tc.want)
		}
	}
}

// TestSessionID: the id's forms.
func TestSessionID(t *testing.T) {
	id := SessionID{0xde, 0xad, 0xbe, 0xef, 15: 1}
	if id.String() != "deadbeef000000000000000000000001" || id.Short() != "deadbeef" {
		t.Errorf("String %s, Short %s", id, id.Short())
	}
	if got, err := ParseSessionID(id.String()); err != nil || got != id {
		t.Errorf("ParseSessionID(%s) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"deadbeef", id.String() + "0", strings.Repeat("g", 32)} {
		if _, err := ParseSessionID(bad); err == nil {
			t.Errorf("ParseSessionID(%q) succeeded", bad)
		}
	}
	s := NewServerConn(newBytesConn(nil))
	if s.ID() != s.ID() || s.ID() == (SessionID{}) || s.ID() == NewServerConn(newBytesConn(nil)).ID() {
		t.Error("a ServerConn's ID is not fixed and random")
	}
}

// TestMarshalRequest: a request goes to another process and back whole.
func TestMarshalRequest(t *testing.T) {
	for _, req := range []Request{
		{User: "bob", Term: "xterm", Window: WindowSize{Rows: 24, Cols: 80}, Env: []string{"LANG=C"}, Capabilities: []string{"flow2"}},
		{User: "bob", Command: &Command{Line: "ls -l", PTY: true}, Capabilities: []string{"exec"}},
		{User: "bob", Resume: &ResumeRequest{ID: SessionID{1}, Secret: make([]byte, ResumeSecretSize), received: 77}},
		{User: "bob", Resume: &ResumeRequest{ID: SessionID{2}}},
		{User: "bob", List: true},
	} {
		b, err := MarshalRequest(&req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalRequest(b)
		if err != nil || !reflect.DeepEqual(got, &req) {
			t.Errorf("round trip of %+v: %+v, %v", req, got, err)
		}
	}
	if _, err := MarshalRequest(&Request{User: "bob", List: true, Resume: &ResumeRequest{}}); err == nil {
		t.Error("a request that both lists and resumes marshals")
	}
	b, _ := MarshalRequest(&Request{User: "bob", List: true})
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), b[len(b)-headerLen:]...), b[:0:0]} {
		if _, err := UnmarshalRequest(bad); err == nil {
			t.Errorf("UnmarshalRequest(%x) succeeded", bad)
		}
	}
}

// FuzzUnmarshalRequest: no input makes UnmarshalRequest panic, and what it accepts marshals back
// to the same bytes.
func FuzzUnmarshalRequest(f *testing.F) {
	for _, s := range unmarshalSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := UnmarshalRequest(data)
		if err != nil {
			return
		}
		b, err := MarshalRequest(req)
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("%+v marshals to %x, %v; was %x", req, b, err, data)
		}
	})
}

func unmarshalSeeds(t testing.TB) []seed {
	var seeds []seed
	for _, s := range []struct {
		name string
		req  Request
	}{
		{"login", Request{User: "bob", Term: "xterm", Capabilities: []string{"resume"}}},
		{"command", Request{User: "bob", Command: &Command{Line: "id"}}},
		{"resume", Request{User: "bob", Resume: &ResumeRequest{ID: SessionID{1}, Secret: make([]byte, ResumeSecretSize), received: 9}}},
		{"list", Request{User: "bob", List: true}},
	} {
		b, err := MarshalRequest(&s.req)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed{s.name, b})
	}
	login, _ := MarshalRequest(&Request{User: "bob"})
	return append(seeds, seed{"optional-frame", append(login, 0xf0, 0, 0, 0)}) // not skipped: refused
}

// TestListSessions: a LIST gets the server's SESSIONS, sanitized; an older server's ACCEPT is
// ErrResumeUnsupported.
func TestListSessions(t *testing.T) {
	started := time.Unix(1700000000, 0)
	list := []SessionInfo{
		{ID: SessionID{1}, Attached: true, Started: started, Detached: started, Peer: "192.0.2.1:513", What: "vi\x1b[2J", PID: 42},
		{ID: SessionID{2}, Started: started.Add(time.Second / 2), Detached: started.Add(time.Hour), Peer: strings.Repeat("p", 200), PID: -1},
	}
	c, s := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		srv := NewServerConn(s)
		req, err := srv.ReadRequest()
		if err == nil && (!req.List || req.User != "bob") {
			err = errors.New("not a LIST request")
		}
		if err == nil {
			err = srv.SendSessions(list)
		}
		done <- err
	}()
	got, err := ListSessions(context.Background(), c, bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []SessionInfo{
		{ID: SessionID{1}, Attached: true, Started: started, Peer: "192.0.2.1:513", What: "vi?[2J", PID: 42},
		{ID: SessionID{2}, Started: started, Detached: started.Add(time.Hour), Peer: strings.Repeat("p", 128)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	// An older server accepts the login, and does not know attach.
	c, s = tcpPair(t)
	go func() {
		p := newRawPeer(t, s)
		_, _ = p.br.ReadByte()
		_, _ = p.fr.readMessage(isLoginFrame)
		_, _ = s.Write(appendFrame([]byte{version}, frameAccept, []byte{0}))
	}()
	if _, err := ListSessions(context.Background(), c, bob); !errors.Is(err, ErrResumeUnsupported) {
		t.Errorf("against an older server: %v", err)
	}
}

// TestServeRefusesResume: a RESUME or LIST request cannot start a session.
func TestServeRefusesResume(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	c, s := tcpPair(t)
	go func() {
		p := newRawPeer(t, c)
		req := bob
		req.Capabilities = []string{capResume, capAttach}
		p.login(req)
		p.send(message{typ: frameResume, resume: &ResumeRequest{ID: SessionID{3}}})
	}()
	srv := NewServerConn(s)
	req, err := srv.ReadRequest()
	if err != nil || req.Resume == nil || req.Resume.ID != (SessionID{3}) {
		t.Fatalf("ReadRequest: %+v, %v", req, err)
	}
	if _, err := srv.Serve(context.Background(), term); err == nil {
		t.Error("Serve of a RESUME request succeeded")
	}
}

// TestServerConnWithRequest: a ServerConn for a request read elsewhere answers with the version
// byte first, unless that went with a CHALLENGE already (NewServerConnChallenged).
func TestServerConnWithRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(net.Conn, *Request) *ServerConn
		want []byte
	}{
		{"fresh", NewServerConnWithRequest, []byte{version, byte(frameRefuse)}},
		{"challenged", NewServerConnChallenged, []byte{byte(frameRefuse), 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			req := bob
			req.Capabilities = []string{capKeyProof}
			srv := tc.new(s, &req)
			if tc.name == "challenged" {
				if _, err := srv.Challenge(make([]byte, KeyProofNonceSize)); err == nil {
					t.Error("a challenged ServerConn challenged again")
				}
			}
			refused := make(chan error, 1)
			go func() { refused <- srv.Refuse("no") }()
			got := make([]byte, 2)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("the answer starts with % x, want % x", got, tc.want)
			}
			_ = c.Close()
			<-refused
		})
	}
}
