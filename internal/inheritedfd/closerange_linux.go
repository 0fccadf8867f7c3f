package inheritedfd

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// closeRangeCloexec is CLOSE_RANGE_CLOEXEC of linux/close_range.h (Linux 5.11), which
// golang.org/x/sys/unix does not define.
const closeRangeCloexec = 1 << 2

// markCloseOnExec sets the close-on-exec flag of every descriptor from 3 on but keep.
func markCloseOnExec(keep []int) error {
	for _, r := range gaps(keep) {
		if err := unix.CloseRange(r[0], r[1], closeRangeCloexec); err != nil {
			if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
				return errNoCloseRange
			}
			return fmt.Errorf("inheritedfd: close_range: %w", err)
		}
	}
	return nil
}
