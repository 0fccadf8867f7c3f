package logintest

import "time"

// The time a refused password login through PAM takes on Debian's login stack, from the answer
// to the verdict. pam_faildelay asks for 3 s, and libpam draws the delay within 50% of that
// (_pam_compute_delay: 1.5-4.5 s); the login itself adds milliseconds. The upper bound leaves
// a loaded machine 2.5 s, and still catches a delay served twice in most draws; the lower bound
// is the one that matters (no verdict at once), and no load can break it.
const (
	PAMRefusalMin = 1400 * time.Millisecond
	PAMRefusalMax = 7 * time.Second
)
