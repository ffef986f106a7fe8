package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Resolver maps a host name to its addresses. The default is
// net.DefaultResolver.LookupNetIP; tests inject a map so that no test ever
// needs real DNS.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// DialControl runs at the dialer's control hook after the SSRF guard has
// accepted the address, just before connect(2). Tests inject one that
// records the address and returns an error, so that no test ever connects
// to anything but loopback.
type DialControl func(network, address string, c syscall.RawConn) error

// AddressError is the SSRF guard refusing an address at connect time.
type AddressError struct {
	Network string
	// Address is the resolved "ip:port" the dialer was about to connect to.
	Address string
	// Host is the URL host that resolved to it.
	Host   string
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("connection to %s (host %s) refused: %s", e.Address, e.Host, e.Reason)
}

// guardian is code.dny.dev/ssrf's deny list: every IANA special-purpose
// IPv4 prefix (loopback, RFC 1918, link-local, CGNAT, 0.0.0.0/8, multicast,
// ...), every IPv6 address outside global unicast (so ::1, IPv4-mapped,
// link-local, unique-local) and the special prefixes inside it (NAT64,
// 6to4, Teredo, documentation). The port is the allowlist's business: an
// endpoint names its port.
var guardian = ssrf.New(ssrf.WithAnyPort())

// checkAddr is the SSRF decision for one resolved address. With
// allowPrivate (the matching endpoint says allow_private: true) loopback
// and RFC 1918 / unique-local addresses are accepted, IPv4-mapped forms
// included; link-local (cloud metadata at 169.254.169.254), CGNAT,
// unspecified, multicast and the rest of the deny list stay refused.
func checkAddr(ip netip.Addr, allowPrivate bool) error {
	if ip.Zone() != "" {
		return errors.New("addresses with an IPv6 zone are refused")
	}
	if allowPrivate {
		if u := ip.Unmap(); u.IsLoopback() || u.IsPrivate() {
			return nil
		}
	}
	if err := guardian.SafeAddr(ip); err != nil {
		if u := ip.Unmap(); u.IsLoopback() || u.IsPrivate() {
			return fmt.Errorf("%s is a loopback or private address; the endpoint does not say allow_private: true", ip)
		}
		return fmt.Errorf("%s is in a refused address range (link-local, CGNAT, unspecified, multicast, IPv4-mapped, NAT64 or other special-purpose)", ip)
	}
	return nil
}

// hopDialer dials for exactly one hop of one call: allowPrivate is the
// decision of the endpoint that matched that hop's URL, so a redirect
// from an allow_private endpoint cannot carry the permission elsewhere.
type hopDialer struct {
	allowPrivate bool
	resolve      Resolver
	control      DialControl
	timeout      time.Duration
}

// DialContext resolves the host (through the injected resolver) and dials
// each address with the guard at the control hook, so the address checked
// is the address connected to: there is no window for DNS rebinding.
func (d *hopDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = d.resolve(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	var first error
	for _, ip := range addrs {
		nd := net.Dialer{
			Timeout:   d.timeout,
			KeepAlive: -1,
			Control: func(network, address string, c syscall.RawConn) error {
				return d.check(host, network, address, c)
			},
		}
		conn, err := nd.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		// Prefer reporting a guard refusal: it is the decision that matters.
		var ae *AddressError
		if first == nil || errors.As(err, &ae) {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// check is the control hook: it runs after the socket exists and before
// connect(2), with the numeric address the kernel is about to use.
func (d *hopDialer) check(host, network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddressError{Network: network, Address: address, Host: host, Reason: "unparseable address"}
	}
	if network != "tcp4" && network != "tcp6" {
		return &AddressError{Network: network, Address: address, Host: host, Reason: "only TCP is dialled"}
	}
	if err := checkAddr(ap.Addr(), d.allowPrivate); err != nil {
		return &AddressError{Network: network, Address: address, Host: host, Reason: err.Error()}
	}
	if d.control != nil {
		return d.control(network, address, c)
	}
	return nil
}

func defaultResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
