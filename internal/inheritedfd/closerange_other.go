//go:build !linux

package inheritedfd

// markCloseOnExec would set the close-on-exec flag of every descriptor from 3 on but keep;
// only Linux has close_range's CLOSE_RANGE_CLOEXEC.
func markCloseOnExec(keep []int) error { return errNoCloseRange }
