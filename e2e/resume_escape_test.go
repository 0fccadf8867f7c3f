package e2e

import "testing"

// TestEscapeDisconnectKeepsSession: ~. closes the connection; a server that keeps sessions keeps
// this one, detached with its shell, and rlogin says how to take it back (exit 0, as netkit's
// rlogin after ~.). rlogin -R then finds the same shell. Without resume, TestEscapeDisconnect.
func TestEscapeDisconnectKeepsSession(t *testing.T) {
	s := userResumeServer(t)
	tm := s.rloginDirect(t)
	tm.ready()
	tm.send("echo BEFORE PID=$$.\r")
	pid := tm.expect(`BEFORE PID=(\d+)\.`)[1]

	tm.send("\r~.")
	tm.expect(`Connection to 127\.0\.0\.1 closed; the session stays detached \(rlogin -R 127\.0\.0\.1 takes it back; exit ends it\)\.`)
	if code := tm.wait(); code != 0 {
		t.Errorf("rlogin exited %d after ~., want 0", code)
	}
	if got := tm.termios(); got != tm.initial {
		t.Errorf("terminal not restored after ~.:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
	s.logLine(t, `msg="session detached"`, 0)
	if !alive(pid) {
		t.Fatalf("the shell %s is gone after ~.", pid)
	}

	reattachSameShell(t, s, pid)
}
