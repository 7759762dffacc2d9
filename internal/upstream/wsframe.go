package upstream

import "encoding/binary"

// WebSocket close codes the gateway sends or reports (RFC 6455 §7.4.1).
const (
	CloseGoingAway     = 1001 // shutdown, worker stop, reload, idle timeout
	CloseNoStatus      = 1005 // a close frame without a code
	CloseAbnormal      = 1006 // the connection ended without a close frame
	CloseInternalError = 1011 // the worker crashed
)

const opClose = 0x8

// frameTracker follows WebSocket frame boundaries in one direction of a
// spliced connection without parsing or copying payloads: it reads each
// frame header and skips its payload length. That is what lets the gateway
// put a close frame between two frames (never inside one), and learn the
// close code each side sent, for metrics and logs.
type frameTracker struct {
	hdr       [14]byte // the header being read (at most 2+8+4 bytes)
	hdrN      int
	remaining uint64 // payload bytes of the current frame still to pass
	opcode    byte
	mask      [4]byte
	masked    bool
	pos       uint64 // payload offset in the current frame
	code      [2]byte
	codeN     int

	closeSeen bool // a whole close frame went through
	closeCode int  // its status code (CloseNoStatus when it had none)
}

// feed advances the tracker over bytes that were just forwarded.
func (t *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		if t.hdrN == 0 && t.remaining > 0 {
			n := uint64(len(p))
			if n > t.remaining {
				n = t.remaining
			}
			if t.opcode == opClose {
				t.captureCode(p[:n])
			}
			t.pos += n
			t.remaining -= n
			p = p[n:]
			if t.remaining == 0 {
				t.endFrame()
			}
			continue
		}
		t.hdr[t.hdrN] = p[0]
		t.hdrN++
		p = p[1:]
		if t.hdrN < 2 || t.hdrN < t.headerLen() {
			continue
		}
		t.startFrame()
	}
}

// headerLen is the full header length, known once two bytes are in.
func (t *frameTracker) headerLen() int {
	n := 2
	switch t.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if t.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (t *frameTracker) startFrame() {
	t.opcode = t.hdr[0] & 0x0f
	t.masked = t.hdr[1]&0x80 != 0
	off := 2
	switch l := t.hdr[1] & 0x7f; l {
	case 126:
		t.remaining = uint64(binary.BigEndian.Uint16(t.hdr[2:4]))
		off = 4
	case 127:
		t.remaining = binary.BigEndian.Uint64(t.hdr[2:10])
		off = 10
	default:
		t.remaining = uint64(l)
	}
	if t.masked {
		copy(t.mask[:], t.hdr[off:off+4])
	}
	t.hdrN, t.pos, t.codeN = 0, 0, 0
	if t.remaining == 0 {
		t.endFrame()
	}
}

// captureCode keeps the first two payload bytes of a close frame,
// unmasked: its status code.
func (t *frameTracker) captureCode(p []byte) {
	for i := 0; i < len(p) && t.codeN < 2; i++ {
		b := p[i]
		if t.masked {
			b ^= t.mask[(t.pos+uint64(i))%4]
		}
		t.code[t.codeN] = b
		t.codeN++
	}
}

func (t *frameTracker) endFrame() {
	if t.opcode != opClose || t.closeSeen {
		return
	}
	t.closeSeen = true
	t.closeCode = CloseNoStatus
	if t.codeN == 2 {
		t.closeCode = int(binary.BigEndian.Uint16(t.code[:]))
	}
}

// atBoundary reports whether the bytes forwarded so far end on a frame
// boundary, where another frame may be inserted.
func (t *frameTracker) atBoundary() bool { return t.hdrN == 0 && t.remaining == 0 }

// closeFrame builds a close frame with code and a short reason. A frame
// to the worker must be masked (it stands for the client); a zero mask
// key leaves the payload as is, which is all masking needs between the
// gateway and its own worker.
func closeFrame(code int, reason string, masked bool) []byte {
	payload := len(reason) + 2
	f := make([]byte, 0, 2+4+payload)
	f = append(f, 0x80|opClose)
	if masked {
		f = append(f, 0x80|byte(payload), 0, 0, 0, 0)
	} else {
		f = append(f, byte(payload))
	}
	f = binary.BigEndian.AppendUint16(f, uint16(code))
	return append(f, reason...)
}
