package transport

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnIsExported: every conn of a mailbox, on both ends, is a *Conn
// whose CloseWrite and NetConn are reachable without assertions.
func TestConnIsExported(t *testing.T) {
	accepted, dialed := mailboxConns(t, "echo")
	for _, c := range []*Conn{accepted, dialed} {
		if _, ok := c.NetConn().(*net.TCPConn); !ok {
			t.Errorf("NetConn: %T, want *net.TCPConn", c.NetConn())
		}
	}
	if err := dialed.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := accepted.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after the peer's CloseWrite: %d, %v; want io.EOF", n, err)
	}
}

// copyRecorder is a conn with ReadFrom and WriteTo that records their use.
type copyRecorder struct {
	net.Conn
	readFrom, writeTo bool
}

func (c *copyRecorder) ReadFrom(r io.Reader) (int64, error) {
	c.readFrom = true
	return io.Copy(writerOnly{c.Conn}, r)
}

func (c *copyRecorder) WriteTo(w io.Writer) (int64, error) {
	c.writeTo = true
	return io.Copy(w, readerOnly{c.Conn})
}

// TestConnCopy: io.Copy to and from a Conn goes through the underlying
// conn's ReadFrom and WriteTo when it has them (the kernel's sendfile and
// splice for TCP and Unix conns), and works without them; WriteTo returns
// the bytes the Mux read first.
func TestConnCopy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		record bool
	}{{"ReadFrom and WriteTo", true}, {"plain conn", false}} {
		t.Run(tt.name, func(t *testing.T) {
			// pipe returns a Conn over one end of a net.Pipe, and the other end.
			var recs []*copyRecorder
			pipe := func() (*Conn, net.Conn) {
				p1, p2 := net.Pipe()
				under := net.Conn(p1)
				if tt.record {
					rec := &copyRecorder{Conn: p1}
					recs = append(recs, rec)
					under = rec
				}
				c := newConn(under, []byte("early "))
				t.Cleanup(func() { _ = c.Close(); _ = p2.Close() })
				_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
				_ = p2.SetDeadline(time.Now().Add(10 * time.Second))
				return c, p2
			}

			// WriteTo: the Mux's bytes, then the peer's.
			c, peer := pipe()
			wrote := make(chan error, 1)
			go func() {
				_, err := io.WriteString(peer, "and late")
				_ = peer.Close()
				wrote <- err
			}()
			var got bytes.Buffer
			_, err := io.Copy(&got, c)
			if got.String() != "early and late" || err != nil {
				t.Errorf("io.Copy from the conn: %q, %v; want %q", got.String(), err, "early and late")
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}

			// ReadFrom, from a reader without WriteTo (which io.Copy would prefer).
			c, peer = pipe()
			done := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(peer)
				done <- b
			}()
			src := io.LimitReader(strings.NewReader("to the peer"), 100)
			n, err := io.Copy(c, src)
			if err != nil || n != int64(len("to the peer")) {
				t.Errorf("io.Copy to the conn: %d, %v", n, err)
			}
			_ = c.Close()
			if b := <-done; string(b) != "to the peer" {
				t.Errorf("peer read %q, want %q", b, "to the peer")
			}

			if tt.record && (!recs[0].writeTo || !recs[1].readFrom) {
				t.Errorf("underlying WriteTo used %v, ReadFrom used %v; want both", recs[0].writeTo, recs[1].readFrom)
			}
		})
	}
}

// TestConnCopyFile: a file copied to a mailbox conn over TCP arrives whole
// (the underlying *net.TCPConn sends it with sendfile), and the owner copies
// it out with WriteTo.
func TestConnCopyFile(t *testing.T) {
	accepted, dialed := mailboxConns(t, "files")
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(dialed, f)
		if err == nil {
			err = dialed.CloseWrite()
		}
		sent <- err
	}()
	var got bytes.Buffer
	if _, err := io.Copy(&got, accepted); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("received %d bytes, want the %d of the file", got.Len(), len(want))
	}
}
