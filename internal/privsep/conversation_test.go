package privsep

import (
	"testing"

	"github.com/rlogin-go/rlogin/session"
)

// step is a message in a conversation: received from the net child (a request) or sent by the
// monitor (a reply), and whether the conversation allows it.
type step struct {
	m  Message
	ok bool
}

func TestConversation(t *testing.T) {
	piped := &Command{session.Command{Line: "ls"}}
	onPTY := &Command{session.Command{Line: "top", PTY: true}}
	proven := &Login{KeyProof: true}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"secure login with a key", []step{
			{&Sign{}, true}, {&Signature{}, true}, {&Sign{}, true}, {&Signature{}, true},
			{&Login{}, true}, {&Info{}, true}, {&Accept{}, true}, {&Hangup{}, true}, {&Kill{}, true},
			{&Exited{}, true}, {&Hangup{}, false},
		}},
		{"password, wrong then right", []step{
			{&Login{}, true}, {&Prompt{}, true}, {&Answer{}, true}, {&Info{}, true},
			{&Prompt{}, true}, {&Answer{}, true}, {&Accept{}, true},
		}},
		{"too many prompts", []step{
			{&Login{}, true}, {&Prompt{}, true}, {&Answer{}, true}, {&Prompt{}, true}, {&Answer{}, true},
			{&Prompt{}, true}, {&Answer{}, true}, {&Prompt{}, false},
		}},
		{"refused", []step{{&Login{}, true}, {&Prompt{}, true}, {&Answer{}, true}, {&Refuse{}, true}, {&Login{}, false}}},
		{"sign refused", []step{{&Sign{}, true}, {&Refuse{}, true}, {&Sign{}, false}}},
		{"answer without a prompt", []step{{&Login{}, true}, {&Answer{}, false}}},
		{"two answers", []step{{&Login{}, true}, {&Prompt{}, true}, {&Answer{}, true}, {&Answer{}, false}}},
		{"two prompts at once", []step{{&Login{}, true}, {&Prompt{}, true}, {&Prompt{}, false}}},
		{"accept with a prompt unanswered", []step{{&Login{}, true}, {&Prompt{}, true}, {&Accept{}, false}}},
		{"sign after login", []step{{&Login{}, true}, {&Sign{}, false}}},
		{"login twice", []step{{&Login{}, true}, {&Login{}, false}}},
		{"answer before login", []step{{&Answer{}, false}}},
		{"hangup before accept", []step{{&Login{}, true}, {&Hangup{}, false}}},
		{"accept before login", []step{{&Accept{}, false}}},
		{"signature after login", []step{{&Login{}, true}, {&Signature{}, false}}},
		{"exited before accept", []step{{&Login{}, true}, {&Exited{}, false}}},
		{"prompt in the session", []step{{&Login{}, true}, {&Accept{}, true}, {&Prompt{}, false}}},
		{"command without a terminal", []step{
			{&Sign{}, true}, {&Signature{}, true}, {piped, true}, {&Login{}, true}, {&Prompt{}, true},
			{&Answer{}, true}, {&Accept{}, false}, {&Pipes{}, true}, {&SignalCommand{}, true},
			{&Hangup{}, true}, {&Exited{}, true}, {&SignalCommand{}, false},
		}},
		{"command on a terminal", []step{
			{onPTY, true}, {&Login{}, true}, {&Pipes{}, false}, {&Accept{}, true}, {&SignalCommand{}, false},
		}},
		{"pipes for a login", []step{{&Login{}, true}, {&Pipes{}, false}}},
		{"signal in a login", []step{{&Login{}, true}, {&Accept{}, true}, {&SignalCommand{}, false}}},
		{"signal before the session", []step{{piped, true}, {&Login{}, true}, {&SignalCommand{}, false}}},
		{"two commands", []step{{piped, true}, {piped, false}}},
		{"command after login", []step{{&Login{}, true}, {piped, false}}},
		{"command with a classic login", []step{{piped, true}, {&Login{Protocol: ProtocolClassic}, false}}},
		{"key proof", []step{
			{&Sign{}, true}, {&Signature{}, true}, {proven, true}, {&Challenge{}, true}, {&Proof{}, true},
			{&Info{}, true}, {&Accept{}, true}, {&Proof{}, false},
		}},
		{"key proof refused", []step{{proven, true}, {&Challenge{}, true}, {&Refuse{}, true}, {&Proof{}, false}}},
		{"challenge without the offer", []step{{&Login{}, true}, {&Challenge{}, false}}},
		{"challenge twice", []step{{proven, true}, {&Challenge{}, true}, {&Proof{}, true}, {&Challenge{}, false}}},
		{"challenge before login", []step{{&Challenge{}, false}}},
		{"challenge after a prompt", []step{{proven, true}, {&Prompt{}, true}, {&Answer{}, true}, {&Challenge{}, false}}},
		{"accept before the proof", []step{{proven, true}, {&Challenge{}, true}, {&Accept{}, false}}},
		{"prompt before the proof", []step{{proven, true}, {&Challenge{}, true}, {&Prompt{}, false}}},
		{"proof without a challenge", []step{{proven, true}, {&Proof{}, false}}},
		{"proof twice", []step{{proven, true}, {&Challenge{}, true}, {&Proof{}, true}, {&Proof{}, false}}},
		{"resume", []step{
			{&Sign{}, true}, {&Signature{}, true}, {&Resume{}, true}, {proven, true}, {&Challenge{}, true},
			{&Proof{}, true}, {&Info{}, false}, {&Prompt{}, false}, {&Accept{}, false}, {&Sessions{}, false},
			{&Relay{}, true}, {&Hangup{}, false}, {&Attach{}, false},
		}},
		{"resume refused", []step{{&Resume{}, true}, {&Login{}, true}, {&Refuse{}, true}, {&Relay{}, false}}},
		{"list", []step{
			{&List{}, true}, {proven, true}, {&Challenge{}, true}, {&Proof{}, true}, {&Relay{}, false},
			{&Pipes{}, false}, {&Sessions{}, true}, {&Sessions{}, false},
		}},
		{"list then resume", []step{{&List{}, true}, {&Resume{}, false}}},
		{"command then resume", []step{{piped, true}, {&Resume{}, false}}},
		{"resume then command", []step{{&Resume{}, true}, {piped, false}}},
		{"resume twice", []step{{&Resume{}, true}, {&Resume{}, false}}},
		{"resume with a classic login", []step{{&Resume{}, true}, {&Login{Protocol: ProtocolClassic}, false}}},
		{"list with a classic login", []step{{&List{}, true}, {&Login{Protocol: ProtocolClassic}, false}}},
		{"resume after login", []step{{&Login{}, true}, {&Resume{}, false}}},
		{"a resumable session", []step{
			{&Login{}, true}, {&Accept{}, true}, {&Detached{}, false}, {&Attach{}, false},
			{&Resumable{}, true}, {&Resumable{}, false}, {&Attached{}, false}, {&Detached{}, true},
			{&Attach{}, true}, {&Attach{}, false}, {&Detached{}, true}, {&Attached{}, true},
			{&Attached{}, false}, {&Exited{}, true}, {&Hangup{}, true}, {&Attach{}, true},
			{&Attached{}, true}, {&Kill{}, true}, {&Exited{}, false}, {&Info{}, false},
		}},
		{"resumable after exited", []step{{&Login{}, true}, {&Accept{}, true}, {&Exited{}, true}, {&Resumable{}, true}, {&Detached{}, true}}},
		{"resumable before the session", []step{{&Login{}, true}, {&Resumable{}, false}}},
		{"resumable pipes", []step{{piped, true}, {&Login{}, true}, {&Pipes{}, true}, {&Resumable{}, false}}},
		{"resumable command on a terminal", []step{{onPTY, true}, {&Login{}, true}, {&Accept{}, true}, {&Resumable{}, true}}},
		{"relay for a login", []step{{&Login{}, true}, {&Relay{}, false}}},
		{"sessions for a login", []step{{&Login{}, true}, {&Sessions{}, false}}},
		{"pipes with a prompt unanswered", []step{{piped, true}, {&Login{}, true}, {&Prompt{}, true}, {&Pipes{}, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConversation(3)
			for i, s := range tc.steps {
				var err error
				if s.m.Type().request() {
					err = c.Received(s.m)
				} else {
					err = c.Sending(s.m)
				}
				if (err == nil) != s.ok {
					t.Fatalf("step %d, %v: %v, want ok %v", i, s.m.Type(), err, s.ok)
				}
			}
		})
	}
}
