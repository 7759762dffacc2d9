package upstream

import (
	"encoding/binary"
	"testing"
)

// refFrames is a reference WebSocket frame parser written from RFC 6455
// §5.2, independent of frameTracker: it splits a whole byte stream into
// frames and returns the offsets where frames end, whether a whole close
// frame came and the status code of the first (CloseNoStatus without one).
func refFrames(stream []byte) (ends map[int]bool, closed bool, closeCode int) {
	ends = map[int]bool{0: true}
	for off := 0; ; {
		rest := stream[off:]
		if len(rest) < 2 {
			return ends, closed, closeCode
		}
		opcode, masked := rest[0]&0x0f, rest[1]&0x80 != 0
		hdr, n := 2, uint64(rest[1]&0x7f)
		switch n {
		case 126:
			if len(rest) < 4 {
				return ends, closed, closeCode
			}
			hdr, n = 4, uint64(binary.BigEndian.Uint16(rest[2:]))
		case 127:
			if len(rest) < 10 {
				return ends, closed, closeCode
			}
			hdr, n = 10, binary.BigEndian.Uint64(rest[2:])
		}
		var key []byte
		if masked {
			if len(rest) < hdr+4 {
				return ends, closed, closeCode
			}
			key, hdr = rest[hdr:hdr+4], hdr+4
		}
		if uint64(len(rest)-hdr) < n {
			return ends, closed, closeCode
		}
		payload := rest[hdr : hdr+int(n)]
		if opcode == opClose && !closed {
			closed, closeCode = true, CloseNoStatus
			if len(payload) >= 2 {
				b0, b1 := payload[0], payload[1]
				if masked {
					b0, b1 = b0^key[0], b1^key[1]
				}
				closeCode = int(b0)<<8 | int(b1)
			}
		}
		off += hdr + int(n)
		ends[off] = true
	}
}

// FuzzFrameTracker feeds a stream to frameTracker in pieces (cut at the
// offsets cuts picks) and checks after every piece that it is at a frame
// boundary exactly where the reference parser puts one, and at the end
// that it saw the same close frame and code.
func FuzzFrameTracker(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	seeds := [][]byte{
		frame(true, 0x1, []byte("hello"), nil),
		frame(true, 0x2, make([]byte, 300), mask),
		append(frame(false, 0x1, []byte("a"), mask), frame(true, 0x0, []byte("b"), mask)...),
		frame(true, opClose, closePayload(1000, "bye"), mask),
		frame(true, opClose, nil, nil),
		frame(true, opClose, []byte{3}, nil),
		append(frame(true, 0x9, []byte("ping"), nil), frame(true, opClose, closePayload(4000, ""), nil)...),
		frame(true, 0x2, make([]byte, 70000), nil),
		{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x'},
	}
	for _, s := range seeds {
		f.Add(s, []byte{1, 3, 5})
		f.Add(s, []byte{})
	}
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		ends, closed, code := refFrames(stream)
		var tr frameTracker
		off := 0
		for i := 0; off < len(stream); i++ {
			n := len(stream) - off
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			tr.feed(stream[off : off+n])
			off += n
			if tr.atBoundary() != ends[off] {
				t.Fatalf("after %d bytes: tracker at boundary %v, reference %v\nstream %x", off, tr.atBoundary(), ends[off], stream)
			}
		}
		if tr.closeSeen != closed || (closed && tr.closeCode != code) {
			t.Fatalf("close seen %v code %d, reference code %d\nstream %x", tr.closeSeen, tr.closeCode, code, stream)
		}
	})
}
