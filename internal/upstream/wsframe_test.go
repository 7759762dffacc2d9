package upstream

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// frame builds one WebSocket frame; mask, when non-nil, masks the payload.
func frame(fin bool, opcode byte, payload []byte, mask []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, m|byte(n))
	case n <= 0xffff:
		f = append(f, m|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, m|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if mask == nil {
		return append(f, payload...)
	}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func TestFrameTracker(t *testing.T) {
	key := []byte{0x11, 0x22, 0x33, 0x44}
	big := bytes.Repeat([]byte("x"), 70000)
	tests := []struct {
		name      string
		stream    []byte
		closeCode int // 0: no close frame
	}{
		{"text", frame(true, 1, []byte("hello"), nil), 0},
		{"empty", frame(true, 2, nil, nil), 0},
		{"16-bit length", frame(true, 2, bytes.Repeat([]byte("y"), 300), nil), 0},
		{"64-bit length, masked", frame(true, 2, big, key), 0},
		{"fragments with a ping between", bytes.Join([][]byte{
			frame(false, 1, []byte("frag"), nil), frame(true, 9, []byte("p"), nil), frame(true, 0, []byte("ment"), nil),
		}, nil), 0},
		{"close from the worker", append(frame(true, 1, []byte("bye"), nil), frame(true, opClose, closePayload(4001, "done"), nil)...), 4001},
		{"masked close from the client", frame(true, opClose, closePayload(1000, ""), key), 1000},
		{"close without a code", frame(true, opClose, nil, nil), CloseNoStatus},
		{"first close wins", append(frame(true, opClose, closePayload(1001, ""), nil), frame(true, opClose, closePayload(1000, ""), nil)...), 1001},
	}
	for _, tt := range tests {
		// Every split point: frames arrive cut anywhere by the network.
		for cut := 0; cut <= len(tt.stream); cut += 1 + len(tt.stream)/97 {
			var tr frameTracker
			tr.feed(tt.stream[:cut])
			tr.feed(tt.stream[cut:])
			if !tr.atBoundary() {
				t.Fatalf("%s, cut at %d: not at a boundary after whole frames", tt.name, cut)
			}
			if got := map[bool]int{true: tr.closeCode}[tr.closeSeen]; got != tt.closeCode {
				t.Fatalf("%s, cut at %d: close code %d, want %d", tt.name, cut, got, tt.closeCode)
			}
		}
		// Byte by byte, a boundary is reported only at the end.
		var tr frameTracker
		for i := range tt.stream {
			tr.feed(tt.stream[i : i+1])
		}
		if !tr.atBoundary() {
			t.Fatalf("%s byte by byte: not at a boundary", tt.name)
		}
	}
}

func TestFrameTrackerMidFrame(t *testing.T) {
	f := frame(true, 2, []byte("0123456789"), nil)
	for cut := 1; cut < len(f); cut++ {
		var tr frameTracker
		tr.feed(f[:cut])
		if tr.atBoundary() {
			t.Fatalf("cut at %d of %d: reported a boundary inside a frame", cut, len(f))
		}
	}
}

func TestCloseFrameIsReadBack(t *testing.T) {
	for _, masked := range []bool{false, true} {
		var tr frameTracker
		tr.feed(closeFrame(CloseGoingAway, "going away", masked))
		if !tr.closeSeen || tr.closeCode != CloseGoingAway || !tr.atBoundary() {
			t.Fatalf("masked=%v: %+v", masked, tr)
		}
	}
}
