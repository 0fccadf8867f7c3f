package session

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestProtocolDoc checks the worked example of docs/protocol.md against the encoder.
func TestProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- worked-example -->\n```text\n")
	if !ok {
		t.Fatal("docs/protocol.md has no worked example")
	}
	block, _, _ = strings.Cut(block, "```")
	var got [2][]byte // client, server
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		dir := map[string]int{"C": 0, "S": 1}[fields[0]]
		b, err := hex.DecodeString(strings.Join(fields[1:], ""))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got[dir] = append(got[dir], b...)
	}

	req := &Request{User: "bob", Term: "xterm", Window: WindowSize{Rows: 24, Cols: 80}, Env: []string{"LANG=C.UTF-8"}}
	want := [2][]byte{
		encodeStream(t, []message{{typ: frameLogin, req: req}, {typ: frameData, data: []byte("exit\r")}}),
		encodeStream(t, []message{{typ: frameAccept}, {typ: frameData, data: []byte("$ ")},
			{typ: frameData, data: []byte("exit\r\n")}, {typ: frameExit}}),
	}
	for i, side := range []string{"client", "server"} {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("the %s's bytes in the doc:\n% x\nthe encoder's:\n% x", side, got[i], want[i])
		}
	}
}
