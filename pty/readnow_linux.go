package pty

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReadOutputNow is ReadOutput without the wait: when no output is pending it returns
// 0, false, nil at once. A session server calls it after a ReadOutput that returned a
// full line-discipline buffer (a pty read gives at most 4 KiB), to collect what a
// flood of output has queued meanwhile and send it in one write instead of several.
func (p *ptyMaster) ReadOutputNow(b []byte) (n int, flushed bool, err error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if len(b) == 0 {
		return 0, false, nil
	}
	buf := b
	if len(b) == 1 {
		buf = p.small[:]
	}
	for {
		if p.finished {
			return 0, false, io.EOF
		}
		var m int
		exited := false
		select {
		case <-p.exited:
			exited = true
		default:
		}
		if exited {
			m, err = p.readPending(buf) // io.EOF once nothing is left
		} else {
			err = control(p.raw, func(fd int) error {
				for {
					var err error
					m, err = p.readCounted(fd, buf)
					if err != unix.EINTR {
						return err
					}
				}
			})
			if err == unix.EAGAIN {
				return 0, false, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
				p.finished = true
				return 0, false, io.EOF
			}
			return 0, false, fmt.Errorf("pty: read output: %w", err)
		}
		if m == 0 {
			p.finished = true
			return 0, false, io.EOF
		}
		switch {
		case buf[0] == unix.TIOCPKT_DATA && m > 1:
			return copy(b, buf[1:m]), false, nil
		case buf[0] == unix.TIOCPKT_DATA:
			continue // an empty data packet
		case buf[0]&unix.TIOCPKT_FLUSHWRITE != 0:
			return 0, true, nil
		}
		// Another status change (flow control, input flush): nothing for the caller.
	}
}
