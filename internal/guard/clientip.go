package guard

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// ipv4InIPv6Bits is the length of the ::ffff:0:0/96 prefix that maps IPv4
// into IPv6.
const ipv4InIPv6Bits = 96

// ClientIP returns the address of the client that made a request.
//
// remote is the socket peer. Unless it lies inside a trusted prefix, it is
// the answer and xff is ignored: a client that is not behind a trusted proxy
// cannot choose its own address by sending X-Forwarded-For.
//
// Behind a trusted proxy, xff (an X-Forwarded-For value; several headers
// joined with commas are one value) is walked from right to left, each proxy
// having appended the peer it saw. Trusted entries are skipped and the first
// untrusted one is the client: entries further left were written by that
// client and may be forged. If every entry is trusted, the left-most is
// returned.
//
// Entries are bare IPv4 or IPv6 addresses, with optional spaces around them;
// IPv4-mapped IPv6 addresses are unmapped. Empty entries are skipped. An
// entry with a port, zone, brackets or anything else is malformed: nothing
// to its left can be trusted either, so the walk stops and returns the hop to
// its right, the trusted proxy that received the request from the sender of
// the garbage. That fails closed: such requests share their proxy's identity
// rather than choose a new one.
//
// ClientIP allocates nothing.
func ClientIP(remote netip.Addr, xff []byte, trusted []netip.Prefix) netip.Addr {
	client := remote.Unmap()
	if isTrusted(client, trusted) {
		walkXFF(xff, trusted, &client)
	}
	return client
}

// ClientIPHeaders is ClientIP for the separate X-Forwarded-For headers of a
// request, in the order received, as returned by fasthttp's
// RequestHeader.PeekAll. Repeated headers are one list (RFC 9110 §5.3), so
// this walks them as if they were joined with commas.
func ClientIPHeaders(remote netip.Addr, xff [][]byte, trusted []netip.Prefix) netip.Addr {
	client := remote.Unmap()
	if !isTrusted(client, trusted) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		if walkXFF(xff[i], trusted, &client) {
			break
		}
	}
	return client
}

// walkXFF walks one header value right to left, setting *client to each
// valid entry. It returns true once the walk must end: at an untrusted
// entry, which is then *client, or at a malformed one, leaving *client on
// the hop to its right.
func walkXFF(v []byte, trusted []netip.Prefix, client *netip.Addr) (done bool) {
	for end := len(v); end >= 0; {
		start := bytes.LastIndexByte(v[:end], ',') + 1
		entry := trimSpace(v[start:end])
		end = start - 1
		if len(entry) == 0 {
			continue
		}
		ip, ok := parseAddr(entry)
		if !ok {
			return true
		}
		*client = ip.Unmap()
		if !isTrusted(*client, trusted) {
			return true
		}
	}
	return false
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// RemoteAddr returns the socket peer of ctx, or the zero Addr when the
// connection is not TCP (a Unix socket, for instance).
func RemoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes
// ("10.0.0.0/8") and single addresses ("192.0.2.1", "::1"). Spaces around
// entries and empty entries are ignored; host bits of a prefix are cleared;
// IPv4-mapped IPv6 forms are turned into their IPv4 equivalents. The error
// names the first bad entry.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		p, err := parseTrustedProxy(entry)
		if err != nil {
			return nil, fmt.Errorf("cannot parse trusted proxy %q: %w", entry, err)
		}
		out = append(out, p)
	}
	return out, nil
}

var (
	errZone       = errors.New("zones are not allowed")
	errMappedBits = errors.New("an IPv4-mapped prefix must be at least /96")
)

func parseTrustedProxy(entry string) (netip.Prefix, error) {
	if !strings.Contains(entry, "/") {
		ip, err := netip.ParseAddr(entry)
		if err != nil {
			return netip.Prefix{}, err
		}
		if ip.Zone() != "" {
			return netip.Prefix{}, errZone
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		if p.Bits() < ipv4InIPv6Bits {
			return netip.Prefix{}, errMappedBits
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-ipv4InIPv6Bits)
	}
	return p.Masked(), nil
}
