package linkemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// A Proxy accepts TCP connections on a local address and forwards each through its Link to an
// upstream address. Close stops it.
type Proxy struct {
	link     *Link
	ln       net.Listener
	upstream string
	ctx      context.Context // done when Close is called
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the accept loop and one goroutine per connection
}

// Listen listens on addr, a TCP address such as "127.0.0.1:0" (port 0 picks a free port; Addr
// says which), and forwards each connection it accepts through l to upstream, a TCP address
// ("host:port"), which it dials for each connection. While the link is Cut, accepted
// connections are reset at once; while it is blackholed they are held, not forwarded (upstream
// is not dialled), until Restore. A connection whose upstream dial fails is reset.
func (l *Link) Listen(addr, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("linkemu: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{link: l, ln: ln, upstream: upstream, ctx: ctx, cancel: cancel}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Close stops accepting, resets every connection through the proxy and waits until all of its
// goroutines have returned. Connections joined through the same Link elsewhere are not touched.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("linkemu: %w", err)
	}
	return nil
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// Out of descriptors or the like: wait a little rather than spin.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one accepted connection: it waits for the path, dials upstream, and joins the
// two.
func (p *Proxy) serve(down net.Conn) {
	defer p.wg.Done()
	for {
		_, st, changed := p.link.snapshot()
		if st == up {
			break
		}
		if st == cut {
			reset(down)
			return
		}
		select {
		case <-changed: // a dead path: the connection waits, as a SYN would be retried
		case <-p.ctx.Done():
			reset(down)
			return
		}
	}
	var d net.Dialer
	up, err := d.DialContext(p.ctx, "tcp", p.upstream)
	if err != nil {
		reset(down)
		return
	}
	_ = p.link.join(p.ctx.Done(), down, up) // its error is the peers' to see: both were reset
}
