package guard

import (
	"net/netip"
	"testing"
)

// BenchmarkClientIP walks a forged entry, the client and one trusted hop.
func BenchmarkClientIP(b *testing.B) {
	trusted := mustTrusted(b, testTrusted)
	remote := netip.MustParseAddr("10.0.0.1")
	xff := []byte("1.2.3.4, 203.0.113.7, 10.0.0.2")
	for b.Loop() {
		ClientIP(remote, xff, trusted)
	}
}

// BenchmarkClientIPDirect is a client that is not behind a proxy.
func BenchmarkClientIPDirect(b *testing.B) {
	trusted := mustTrusted(b, testTrusted)
	remote := netip.MustParseAddr("203.0.113.7")
	xff := []byte("1.2.3.4")
	for b.Loop() {
		ClientIP(remote, xff, trusted)
	}
}

func BenchmarkParseAddr(b *testing.B) {
	for _, s := range []string{"203.0.113.7", "2001:db8:85a3::8a2e:370:7334", "::ffff:203.0.113.7", "not-an-ip"} {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				parseAddr(in)
			}
		})
		b.Run(s+"/netip", func(b *testing.B) {
			for b.Loop() {
				_, _ = netip.ParseAddr(string(in))
			}
		})
	}
}
