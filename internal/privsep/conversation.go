package privsep

import (
	"errors"
	"fmt"
)

// A Conversation is the monitor's check of the order of one net child's messages
// (docs/privsep-messages.md, "Order"): SIGN, at most one COMMAND (secure only), then LOGIN;
// ANSWER once per PROMPT, at most MaxPrompts prompts; ACCEPT for a login or a command on a
// terminal, PIPES for a command without one; after that HANGUP and KILL, and SIGNAL for a
// command without a terminal; nothing after REFUSE or EXITED. CHALLENGE comes at most once, only
// after a secure LOGIN that offered the key proof and before any PROMPT, and its PROOF before
// anything but REFUSE. The monitor calls Received for
// each request before acting on it and Sending before each reply; an error means the message is
// out of order, and the connection ends. (How many host-key signatures a connection gets is
// HostKeyHolder's to bound.)
type Conversation struct {
	maxPrompts int
	state      conversationState
	prompts    int      // PROMPTs sent
	prompted   bool     // a PROMPT awaits its ANSWER
	command    *Command // the COMMAND received, if any
	keyProof   bool     // the LOGIN offered the key proof
	challenged bool     // a CHALLENGE was sent
	proving    bool     // a CHALLENGE awaits its PROOF
}

type conversationState int

const (
	beforeLogin conversationState = iota
	authenticating
	inSession
	done
)

func (s conversationState) String() string {
	return [...]string{"before LOGIN", "authenticating", "in the session", "after the end"}[s]
}

// NewConversation returns the Conversation of a new net child that may be asked for at most
// maxPrompts answers (MaxAuthTries-style: a password and its retries).
func NewConversation(maxPrompts int) *Conversation { return &Conversation{maxPrompts: maxPrompts} }

// Received checks a request from the net child and moves the conversation on.
func (c *Conversation) Received(m Message) error {
	switch t := m.Type(); {
	case c.state == beforeLogin && t == TypeSign:
	case c.state == beforeLogin && t == TypeCommand && c.command == nil:
		c.command = m.(*Command)
	case c.state == beforeLogin && t == TypeLogin:
		if c.command != nil && m.(*Login).Protocol == ProtocolClassic {
			return errors.New("privsep: COMMAND with a classic LOGIN")
		}
		c.state = authenticating
		c.keyProof = m.(*Login).KeyProof
	case c.state == authenticating && t == TypeProof && c.proving:
		c.proving = false
	case c.state == authenticating && t == TypeAnswer && c.prompted:
		c.prompted = false
	case c.state == inSession && (t == TypeHangup || t == TypeKill):
	case c.state == inSession && t == TypeSignal && c.pipes():
	default:
		return c.outOfOrder(m)
	}
	return nil
}

// pipes reports whether the session is a command without a terminal.
func (c *Conversation) pipes() bool { return c.command != nil && !c.command.PTY }

// Sending checks a reply the monitor is about to send and moves the conversation on.
func (c *Conversation) Sending(m Message) error {
	t := m.Type()
	if c.proving && t != TypeRefuse {
		return c.outOfOrder(m)
	}
	switch {
	case c.state == beforeLogin && t == TypeSignature:
	case c.state == authenticating && t == TypeChallenge && c.keyProof && !c.challenged && c.prompts == 0:
		c.challenged = true
		c.proving = true
	case c.state == authenticating && t == TypePrompt && !c.prompted:
		if c.prompts == c.maxPrompts {
			return fmt.Errorf("privsep: PROMPT beyond the limit of %d", c.maxPrompts)
		}
		c.prompts++
		c.prompted = true
	case (c.state == authenticating || c.state == inSession) && t == TypeInfo:
	case c.state == authenticating && t == TypeAccept && !c.prompted && !c.pipes():
		c.state = inSession
	case c.state == authenticating && t == TypePipes && !c.prompted && c.pipes():
		c.state = inSession
	case (c.state == beforeLogin || c.state == authenticating) && t == TypeRefuse:
		c.state = done
	case c.state == inSession && t == TypeExited:
		c.state = done
	default:
		return c.outOfOrder(m)
	}
	return nil
}

func (c *Conversation) outOfOrder(m Message) error {
	switch {
	case c.prompted:
		return fmt.Errorf("privsep: %v out of order (%v, a PROMPT unanswered)", m.Type(), c.state)
	case c.proving:
		return fmt.Errorf("privsep: %v out of order (%v, a CHALLENGE unanswered)", m.Type(), c.state)
	}
	return fmt.Errorf("privsep: %v out of order (%v)", m.Type(), c.state)
}
