package privsep

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the seeds in testdata/fuzz")

// Seeds: every valid message (the generated corpus in testdata/fuzz holds them too, with the
// inputs fuzzing found worth keeping), and a few broken ones.
func addSeeds(f *testing.F, requests bool) {
	for _, m := range validMessages(f) {
		if m.Type().request() == requests {
			b, err := encode(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x02, 0x01, 0xff, 0xff})
}

// fuzzDecode checks that decode never panics, and that what it accepts is valid and has one
// encoding: the input.
func fuzzDecode(t *testing.T, b []byte, decode func([]byte) (Message, error)) {
	m, err := decode(b)
	if err != nil {
		return
	}
	again, err := encode(m)
	if err != nil {
		t.Fatalf("decoded %#v from %x, which does not encode: %v", m, b, err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("decoded %#v from %x, which encodes as %x", m, b, again)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	addSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, decodeRequest) })
}

func FuzzDecodeReply(f *testing.F) {
	addSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, decodeReply) })
}

// TestFuzzSeeds keeps testdata/fuzz holding every valid message as a seed of its decoder's
// fuzz target; -update writes them.
func TestFuzzSeeds(t *testing.T) {
	for i, m := range validMessages(t) {
		b, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		target := "FuzzDecodeReply"
		if m.Type().request() {
			target = "FuzzDecodeRequest"
		}
		path := filepath.Join("testdata", "fuzz", target, fmt.Sprintf("valid-%02d-%s", i, m.Type()))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is out of date (%v): run go test -run TestFuzzSeeds -update", path, err)
		}
	}
}
