package guard

import "net/netip"

// Address text limits.
const (
	ipv4Octets     = 4
	ipv4MaxOctet   = 255
	ipv4MaxDigits  = 3
	ipv6Bytes      = 16
	ipv6MaxDigits  = 4
	ipv6GroupBytes = 2
	hexBase        = 16
	decimalBase    = 10
)

// parseAddr parses an IPv4 or IPv6 address from b without allocating. It
// accepts what netip.ParseAddr accepts except IPv6 zones (meaningless in a
// forwarded header), so a malformed header costs nothing either.
func parseAddr(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			ip, ok := parseIPv4(b)
			return netip.AddrFrom4(ip), ok
		case ':':
			return parseIPv6(b)
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 parses a dotted quad: four decimal octets, no leading zeros.
func parseIPv4(b []byte) (ip [ipv4Octets]byte, ok bool) {
	octet, digits, n := 0, 0, 0
	for i, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && octet == 0 {
				return ip, false // leading zero
			}
			octet = octet*decimalBase + int(c-'0')
			digits++
			if digits > ipv4MaxDigits || octet > ipv4MaxOctet {
				return ip, false
			}
		case c == '.' && digits > 0 && n < ipv4Octets-1 && i < len(b)-1:
			ip[n] = byte(octet)
			n++
			octet, digits = 0, 0
		default:
			return ip, false
		}
	}
	if digits == 0 || n != ipv4Octets-1 {
		return ip, false
	}
	ip[n] = byte(octet)
	return ip, true
}

// parseIPv6 parses RFC 4291 text: up to eight hex groups, at most one "::"
// standing for at least one zero group, and optionally a dotted quad in
// place of the last two groups.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [ipv6Bytes]byte
	ellipsis := -1 // byte offset of "::" in ip
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
	}
	i := 0
	for len(b) > 0 && i < ipv6Bytes {
		group, digits := 0, 0
		for digits < len(b) && digits <= ipv6MaxDigits {
			v, ok := hexValue(b[digits])
			if !ok {
				break
			}
			group = group*hexBase + v
			digits++
		}
		if digits == 0 || digits > ipv6MaxDigits {
			return netip.Addr{}, false
		}
		if digits < len(b) && b[digits] == '.' {
			// The rest is an embedded IPv4 address.
			if i > ipv6Bytes-ipv4Octets || (ellipsis < 0 && i != ipv6Bytes-ipv4Octets) {
				return netip.Addr{}, false
			}
			ip4, ok := parseIPv4(b)
			if !ok {
				return netip.Addr{}, false
			}
			copy(ip[i:], ip4[:])
			i += ipv4Octets
			b = nil
			break
		}
		ip[i], ip[i+1] = byte(group>>8), byte(group)
		i += ipv6GroupBytes
		b = b[digits:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			b = b[1:]
		}
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	switch {
	case i < ipv6Bytes && ellipsis < 0:
		return netip.Addr{}, false // too few groups
	case i == ipv6Bytes && ellipsis >= 0:
		return netip.Addr{}, false // "::" must stand for at least one group
	case i < ipv6Bytes:
		n := ipv6Bytes - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	}
	return netip.AddrFrom16(ip), true
}

func hexValue(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + decimalBase, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + decimalBase, true
	}
	return 0, false
}
