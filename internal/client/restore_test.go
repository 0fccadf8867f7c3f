package client

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTerminalRestoredBeforeHandlersGo: rlogin puts the terminal back before it gives up its
// handlers of SIGHUP, SIGINT, SIGQUIT and SIGTERM. Once a handler is gone, such a signal kills
// rlogin the default way, and must find the terminal as rlogin found it. Both ways out are
// checked: the remote shell exits, and SIGTERM arrives during the session. (rlogin runs in this
// process, so that the test sees the terminal whenever a handler is stopped.)
func TestTerminalRestoredBeforeHandlersGo(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(tt *testTerminal)
		want int
	}{
		{"shell exits", func(tt *testTerminal) { tt.send("exit 3\r") }, 3},
		{"SIGTERM", func(tt *testTerminal) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil { // rlogin handles it
				tt.t.Fatal(err)
			}
		}, 128 + int(syscall.SIGTERM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, nil)
			home := t.TempDir()
			s.trust(t, home)
			tt := openTerminal(t)
			before := tt.termios()
			opts, err := ParseArgs([]string{"-l", "tester", "-p", s.port, "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			cfg := &Config{Stdin: tt.slave, Stdout: tt.slave, Stderr: tt.slave, Home: home, Environ: userEnv(home), Prompt: &fakePrompt{}}
			r := newRunner(cfg, opts, cfg.Stderr)
			var mu sync.Mutex
			var states []*unix.Termios // the terminal's whenever a handler was stopped
			r.stopSignal = func(c chan<- os.Signal) {
				ts, err := unix.IoctlGetTermios(int(tt.slave.Fd()), unix.TCGETS)
				if err != nil {
					ts = nil
				}
				mu.Lock()
				states = append(states, ts)
				mu.Unlock()
				signal.Stop(c)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			code := make(chan int, 1)
			go func() { code <- r.run(ctx) }()
			tt.ready()
			tc.end(tt)
			select {
			case c := <-code:
				if c != tc.want {
					t.Errorf("exit status %d, want %d", c, tc.want)
				}
			case <-time.After(testTimeout):
				cancel()
				<-code
				t.Fatal("rlogin did not end")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(states) == 0 {
				t.Fatal("no signal handler was stopped")
			}
			for i, ts := range states {
				if ts == nil || *ts != before {
					t.Errorf("handler %d stopped with the terminal %+v, not as rlogin found it (%+v)", i+1, ts, before)
				}
			}
		})
	}
}
