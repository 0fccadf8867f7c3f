package daemon

import (
	"context"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestDetachedSessionMemory measures what a detached session costs in the daemon's memory, the
// figure in rlogind(8): with RLOGIND_MEASURE_DETACHED=n, n idle sessions are started and their
// connections cut, and the Go heap and goroutine stacks in use are compared with before them,
// once the clients (in this process too) are gone. Skipped without it: it measures, it checks
// nothing.
func TestDetachedSessionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RLOGIND_MEASURE_DETACHED"))
	if n <= 0 {
		t.Skip("set RLOGIND_MEASURE_DETACHED=n to measure n detached sessions")
	}
	raiseFDLimit(t, uint64(20*n+100))
	ts := startServer(t, func(c *Config) {
		c.MaxSessions = -1
		c.Logger = nil // the log would grow with every session
	})
	before := memInUse()
	goroutines := runtime.NumGoroutine()
	for i := range n {
		detachIdle(t, ts)
		if i%50 == 49 {
			t.Logf("%d sessions detached", i+1)
		}
	}
	waitFor(t, "every session detached", func() bool { _, detached := ts.srv.resumes.count(); return detached == n })
	after := memInUse()
	t.Logf("%d detached sessions: heap and stacks in use %.1f KiB per session (heap %.1f, stacks %.1f); %.1f goroutines per session",
		n, float64(after.total()-before.total())/1024/float64(n), float64(after.heap-before.heap)/1024/float64(n),
		float64(after.stacks-before.stacks)/1024/float64(n), float64(runtime.NumGoroutine()-goroutines)/float64(n))
}

// detachIdle logs in to ts offering resume, waits for the shell's prompt, cuts the connection,
// and waits for the client to give up, so that only the server's side of the session is left.
func detachIdle(t *testing.T, ts *testServer) {
	t.Helper()
	conn, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), ts.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	c, out := ts.givingUpClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mark := 0
	if _, ok := out.Expect(&mark, regexp.MustCompile(`[$#] $`), shortTimeout); !ok {
		t.Fatalf("no prompt: %q", out.String())
	}
	_ = conn.Close()
	_ = c.Wait()
}

// memUse is the Go runtime's memory in use.
type memUse struct{ heap, stacks uint64 }

func (m memUse) total() uint64 { return m.heap + m.stacks }

// memInUse collects the garbage (twice: finalizers) and reads the heap and stacks in use.
func memInUse() memUse {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
		time.Sleep(100 * time.Millisecond) // the sessions' goroutines settle
	}
	runtime.ReadMemStats(&ms)
	return memUse{heap: ms.HeapInuse, stacks: ms.StackInuse}
}
