package pipes

import (
	"io"
	"os"
	"testing"
	"time"
)

// TestEndsServeHandedPipes: Ends made from pipes another process holds the other ends of (as a
// net child gets them from its monitor) carry input and output, pass on the end of input, and
// once Drain says the command has exited, stop waiting for output a background job keeps open.
func TestEndsServeHandedPipes(t *testing.T) {
	var files [6]*os.File // command's stdin, ours; our stdout, command's; our stderr, command's
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		files[i], files[i+1] = r, w
		t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	}
	e := NewEnds(files[1], files[2], files[4])
	t.Cleanup(func() { _ = e.Close() })
	if in, out, errOut := e.Files(); in != files[1] || out != files[2] || errOut != files[4] {
		t.Fatal("Files returns other files than NewEnds got")
	}

	if _, err := e.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	if err := e.SendEOF(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(files[0]); err != nil || string(got) != "in" {
		t.Fatalf("the command's stdin: %q, %v; want \"in\" then EOF", got, err)
	}
	if _, err := files[3].Write([]byte("out")); err != nil {
		t.Fatal(err)
	}
	_ = files[5].Close() // the command's stderr ends: EOF
	if got := readAll(t, e.ReadErrorOutput); got != "" {
		t.Errorf("stderr: %q, want none", got)
	}

	// stdout stays open (a background job holds it): after Drain, a read ends within
	// DrainTimeout with EOF.
	start := time.Now()
	e.Drain()
	if got := readAll(t, func(b []byte) (int, error) { n, _, err := e.ReadOutput(b); return n, err }); got != "out" {
		t.Errorf("stdout: %q, want \"out\"", got)
	}
	if d := time.Since(start); d > DrainTimeout+time.Second {
		t.Errorf("the drained read took %v, want at most about DrainTimeout (%v)", d, DrainTimeout)
	}
}
