package privsep

import (
	"errors"
	"fmt"
)

// A Conversation is the monitor's check of the order of one net child's messages
// (docs/privsep-messages.md, "Order"): SIGN, at most one of COMMAND (secure only), RESUME or
// LIST (secure only), then LOGIN; ANSWER once per PROMPT, at most MaxPrompts prompts; ACCEPT
// for a login or a command on a terminal, PIPES for a command without one, SESSIONS for a LIST
// and RELAY for a RESUME (neither of those two gets a PROMPT, an INFO or an ACCEPT); after
// ACCEPT or PIPES, HANGUP and KILL, SIGNAL for a command without a terminal, and for a session
// on a terminal RESUMABLE (once), then DETACHED, ATTACH and its ATTACHED (one at a time), also
// after EXITED (and HANGUP and KILL, which then do nothing), until the net child ends; nothing after REFUSE, SESSIONS or RELAY. CHALLENGE
// comes at most once, only after a secure LOGIN that offered the key proof and before any
// PROMPT, and its PROOF before anything but REFUSE. The monitor calls Received for each request
// before acting on it and Sending before each reply; an error means the message is out of
// order, and the connection ends. (How many host-key signatures a connection gets is
// HostKeyHolder's to bound.)
type Conversation struct {
	maxPrompts int
	state      conversationState
	prompts    int      // PROMPTs sent
	prompted   bool     // a PROMPT awaits its ANSWER
	command    *Command // the COMMAND received, if any
	resume     *Resume  // the RESUME received, if any
	list       bool     // a LIST was received
	keyProof   bool     // the LOGIN offered the key proof
	challenged bool     // a CHALLENGE was sent
	proving    bool     // a CHALLENGE awaits its PROOF
	resumable  bool     // the session sent RESUMABLE
	attaching  bool     // an ATTACH awaits its ATTACHED
}

type conversationState int

const (
	beforeLogin conversationState = iota
	authenticating
	inSession
	exited // the shell has exited; a resumable session may still be resumed to deliver the rest
	done
)

func (s conversationState) String() string {
	return [...]string{"before LOGIN", "authenticating", "in the session", "after EXITED", "after the end"}[s]
}

// NewConversation returns the Conversation of a new net child that may be asked for at most
// maxPrompts answers (MaxAuthTries-style: a password and its retries).
func NewConversation(maxPrompts int) *Conversation { return &Conversation{maxPrompts: maxPrompts} }

// Received checks a request from the net child and moves the conversation on.
func (c *Conversation) Received(m Message) error {
	running := c.state == inSession || c.state == exited
	switch t := m.Type(); {
	case c.state == beforeLogin && t == TypeSign:
	case c.state == beforeLogin && t == TypeCommand && !c.instead():
		c.command = m.(*Command)
	case c.state == beforeLogin && t == TypeResume && !c.instead():
		c.resume = m.(*Resume)
	case c.state == beforeLogin && t == TypeList && !c.instead():
		c.list = true
	case c.state == beforeLogin && t == TypeLogin:
		if c.instead() && m.(*Login).Protocol == ProtocolClassic {
			return errors.New("privsep: COMMAND, RESUME or LIST with a classic LOGIN")
		}
		c.state = authenticating
		c.keyProof = m.(*Login).KeyProof
	case c.state == authenticating && t == TypeProof && c.proving:
		c.proving = false
	case c.state == authenticating && t == TypeAnswer && c.prompted:
		c.prompted = false
	case (c.state == inSession || c.state == exited && c.resumable) && (t == TypeHangup || t == TypeKill):
		// After EXITED they do nothing: a detached session whose shell exited may still end.
	case c.state == inSession && t == TypeSignal && c.pipes():
	case running && t == TypeResumable && !c.resumable && !c.pipes():
		c.resumable = true
	case running && t == TypeDetached && c.resumable:
	case running && t == TypeAttached && c.attaching:
		c.attaching = false
	default:
		return c.outOfOrder(m)
	}
	return nil
}

// instead reports whether a COMMAND, RESUME or LIST came: each one instead of the others.
func (c *Conversation) instead() bool { return c.command != nil || c.resume != nil || c.list }

// pipes reports whether the session is a command without a terminal.
func (c *Conversation) pipes() bool { return c.command != nil && !c.command.PTY }

// resuming reports whether the connection asked for no session of its own (RESUME or LIST).
func (c *Conversation) resuming() bool { return c.resume != nil || c.list }

// Sending checks a reply the monitor is about to send and moves the conversation on.
func (c *Conversation) Sending(m Message) error {
	t := m.Type()
	if c.proving && t != TypeRefuse {
		return c.outOfOrder(m)
	}
	login := c.state == authenticating && !c.resuming()
	switch {
	case c.state == beforeLogin && t == TypeSignature:
	case c.state == authenticating && t == TypeChallenge && c.keyProof && !c.challenged && c.prompts == 0:
		c.challenged = true
		c.proving = true
	case login && t == TypePrompt && !c.prompted:
		if c.prompts == c.maxPrompts {
			return fmt.Errorf("privsep: PROMPT beyond the limit of %d", c.maxPrompts)
		}
		c.prompts++
		c.prompted = true
	case (login || c.state == inSession) && t == TypeInfo:
	case login && t == TypeAccept && !c.prompted && !c.pipes():
		c.state = inSession
	case login && t == TypePipes && !c.prompted && c.pipes():
		c.state = inSession
	case c.state == authenticating && t == TypeSessions && c.list:
		c.state = done
	case c.state == authenticating && t == TypeRelay && c.resume != nil:
		c.state = done
	case (c.state == beforeLogin || c.state == authenticating) && t == TypeRefuse:
		c.state = done
	case c.state == inSession && t == TypeExited:
		c.state = exited
	case (c.state == inSession || c.state == exited) && t == TypeAttach && c.resumable && !c.attaching:
		c.attaching = true
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
