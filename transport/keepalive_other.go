//go:build !linux

package transport

import (
	"net"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not known: keepalive alone notices a
// dead peer of an idle connection.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
