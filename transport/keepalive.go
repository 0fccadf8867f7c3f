package transport

import (
	"fmt"
	"net"
	"time"
)

// KeepAlive says how the kernel notices that the peer of a TCP connection is gone, for a
// connection that is idle and for one with data to send: TCP keepalive probes after Interval
// without a packet from the peer, every Interval after, and the connection dropped when Count of
// them went unanswered (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT); and data that
// stays unacknowledged for Interval times Count drops it too (TCP_USER_TIMEOUT, on Linux),
// instead of the 15 minutes or so of retransmissions the kernel gives it by default. A peer that
// vanished without a word (a NAT that forgot the connection, a laptop gone to sleep) then
// fails the connection's Reads and Writes within that time, whatever protocol runs on it.
//
// The zero value is DefaultKeepAliveInterval and DefaultKeepAliveCount (45 seconds). A negative
// Interval leaves the socket as the system and package net make it (net's own keepalive, with
// its defaults, and no user timeout).
type KeepAlive struct {
	Interval time.Duration // 0: DefaultKeepAliveInterval; negative: the system's settings
	Count    int           // 0 (or negative): DefaultKeepAliveCount
}

// The defaults of KeepAlive: a dead peer is noticed within 45 seconds. Idle probes every 15
// seconds also keep NATs and firewalls that forget an idle connection after 30 seconds or more
// from forgetting it.
const (
	DefaultKeepAliveInterval = 15 * time.Second
	DefaultKeepAliveCount    = 3
)

// Set sets k's options on the TCP socket under c, which may be a *net.TCPConn or a conn of this
// package or another that leads to one through NetConn methods (a *Conn, a *SecureConn). On
// other conns (Unix-domain sockets, the conns of a Network such as memnet) it does nothing.
func (k KeepAlive) Set(c net.Conn) error {
	if k.Interval < 0 {
		return nil
	}
	tc := tcpConnOf(c)
	if tc == nil {
		return nil
	}
	interval, count := k.Interval, k.Count
	if interval == 0 {
		interval = DefaultKeepAliveInterval
	}
	if count <= 0 {
		count = DefaultKeepAliveCount
	}
	interval = max(interval, time.Second) // the kernel counts keepalive in seconds
	err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: interval, Interval: interval, Count: count})
	if err == nil {
		err = setUserTimeout(tc, interval*time.Duration(count))
	}
	if err != nil {
		return fmt.Errorf("transport: keepalive: %w", err)
	}
	return nil
}

// tcpConnOf returns the *net.TCPConn under c, or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for range 8 { // a bound: the wrappers of this module are at most a few deep
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
