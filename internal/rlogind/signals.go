package rlogind

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// StopSignals returns the signals that stop rlogind: SIGTERM and SIGINT, less those that were
// ignored when the process started (`nohup` and `&` in a script leave signals ignored, and a
// daemon started that way must keep ignoring them). Call it before sigreset.Reset, which
// installs handlers for the ignored signals and so changes what signal.Ignored reports.
func StopSignals() []os.Signal {
	var sigs []os.Signal
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if !signal.Ignored(sig) {
			sigs = append(sigs, sig)
		}
	}
	return sigs
}

// ReloadSignals returns the signals that make rlogind reload its configuration: SIGHUP, unless
// it was ignored when the process started (nohup: a hangup of the terminal rlogind was started
// from must then do nothing). Call it before sigreset.Reset, as StopSignals.
func ReloadSignals() []os.Signal {
	if signal.Ignored(syscall.SIGHUP) {
		return nil
	}
	return []os.Signal{syscall.SIGHUP}
}

// NotifyStop returns a copy of ctx that is cancelled when one of sigs arrives (or stop is
// called). With no sigs it only wraps ctx: signal.NotifyContext with none would catch them all.
func NotifyStop(ctx context.Context, sigs []os.Signal) (context.Context, context.CancelFunc) {
	if len(sigs) == 0 {
		return context.WithCancel(ctx)
	}
	return signal.NotifyContext(ctx, sigs...)
}

// NotifyReload returns a channel that receives a value for each of sigs that arrives (several
// arriving before the last one was handled count as one), and a func that stops the delivery.
// With no sigs the channel never receives.
func NotifyReload(sigs []os.Signal) (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	if len(sigs) == 0 {
		return out, func() {}
	}
	in := make(chan os.Signal, 1)
	signal.Notify(in, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-in:
				select {
				case out <- struct{}{}:
				default: // one is pending already
				}
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return out, func() {
		once.Do(func() {
			signal.Stop(in)
			close(done)
			wg.Wait()
		})
	}
}
