package daemon

import (
	"os"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/session"
)

// A netPipes is a command on pipes as the net child serves it: the monitor started it and
// reaps it, and handed over the three pipes (PIPES); its process operations are messages to
// the monitor (HANGUP, KILL, SIGNAL), and its end the monitor's EXITED. The pipes are served by
// package pipes' rules, as user mode serves a command it started itself.
type netPipes struct {
	*pipes.Ends
	shell *remoteShell
}

var (
	_ session.Terminal          = (*netPipes)(nil)
	_ session.StatusWaiter      = (*netPipes)(nil)
	_ session.ErrorOutputReader = (*netPipes)(nil)
	_ session.Signaler          = (*netPipes)(nil)
	_ session.OutputNowReader   = (*netPipes)(nil)
	_ session.TryWriter         = (*netPipes)(nil)
)

// newNetPipes serves the pipes of a PIPES message (stdin, stdout, stderr: the channel checked
// their number, type and access mode) of the command ch's monitor runs.
func newNetPipes(ch *privsep.Channel, files []*os.File) *netPipes {
	ends := pipes.NewEnds(files[0], files[1], files[2])
	// Once the command has exited, its output is drained as a command's this process reaped.
	return &netPipes{Ends: ends, shell: startRemoteShell(ch, ends.Drain, nil)}
}

// Signal asks the monitor to send sig to the command's process group (SIGNAL).
func (p *netPipes) Signal(sig syscall.Signal) error {
	return p.shell.ch.Send(&privsep.SignalCommand{Signal: sig})
}

func (p *netPipes) Hangup()                 { p.shell.Hangup() }
func (p *netPipes) Kill()                   { p.shell.Kill() }
func (p *netPipes) Exited() <-chan struct{} { return p.shell.Exited() }

// WaitStatus waits for the monitor's EXITED and returns the status it tells.
func (p *netPipes) WaitStatus() (syscall.WaitStatus, error) { return p.shell.Wait() }

// Wait waits as WaitStatus does; the state of a process another one reaped is not at hand, so
// it is nil (session.StatusWaiter gives the status).
func (p *netPipes) Wait() (*os.ProcessState, error) {
	_, err := p.shell.Wait()
	return nil, err
}
