//go:build pam

package e2e

import "testing"

// TestPrivsepBlackholePAM is TestPrivsepBlackhole with the PAM build of rlogind, whose monitor
// starts the shell itself: the network process still runs the session, and its probes.
func TestPrivsepBlackholePAM(t *testing.T) {
	privsepBlackhole(t, pamRlogind(t))
}
