package admission

import (
	"net"
	"net/netip"
)

// source is a client's IP address and the network block it belongs to; the zero source (not
// ok) stands for clients without an IP address (Unix-domain sockets), to which no per-source
// rule applies.
type source struct {
	addr   netip.Addr
	prefix netip.Prefix
}

func (s source) ok() bool       { return s.prefix.IsValid() }
func (s source) String() string { return s.prefix.String() }

// sourceOf returns the block of addr's IP address (IPv4-mapped IPv6 addresses count as IPv4).
func sourceOf(addr net.Addr, bits NetBlockSize) source {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return source{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return source{}
	}
	ip = ip.Unmap()
	n := bits.V6
	if ip.Is4() {
		n = bits.V4
	}
	ip = ip.WithZone("")
	p, err := ip.Prefix(n)
	if err != nil {
		return source{}
	}
	return source{addr: ip, prefix: p}
}
