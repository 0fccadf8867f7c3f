package pamlogin_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// The main goroutine stays on the main thread, where Start must open PAM sessions (pam_loginuid).
func init() { runtime.LockOSThread() }

// onMain carries functions to the main goroutine, which runs them on the main thread. It is set
// once, by TestMain, before any test runs.
var onMain chan func()

// TestMain runs the tests on a goroutine of their own, so that the main goroutine can serve
// onMain, then checks for leaked goroutines as goleak.VerifyTestMain would.
func TestMain(m *testing.M) {
	onMain = make(chan func())
	done := make(chan int)
	go func() { done <- m.Run() }()
	for {
		select {
		case f := <-onMain:
			f()
		case code := <-done:
			if err := goleak.Find(); code == 0 && err != nil {
				fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
				code = 1
			}
			os.Exit(code)
		}
	}
}

// mainThread runs f on the main thread and waits for it.
func mainThread(f func()) {
	done := make(chan struct{})
	onMain <- func() {
		defer close(done)
		f()
	}
	<-done
}
