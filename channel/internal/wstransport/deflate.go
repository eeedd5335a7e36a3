package wstransport

import (
	"bytes"
	"compress/flate"
	"sync"
)

// permessage-deflate (RFC 7692) without context takeover: every message is
// compressed with a fresh compressor, so the compressed frame of a
// broadcast is the same for every subscriber that negotiated compression
// and is built once (package channel caches it on the shared frame), and a connection holds no compressor
// state between messages. Small payloads are sent uncompressed (the RSV1
// bit is per message), where deflate would not pay for its CPU.

// deflateThreshold is the smallest frame worth compressing, in bytes.
const deflateThreshold = 512

// deflaters are reused compressors: a flate.Writer is large (about 1 MB)
// and costly to make, and a message needs one only for its compression.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// deflateTail is the end of a sync flush, which RFC 7692 removes from
// every compressed message.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// Compress turns a complete uncompressed server frame (from FinishFrame)
// into a compressed one (RSV1 set), for a connection that negotiated
// permessage-deflate (Conn.Deflate). It returns the frame unchanged if it
// is shorter than deflateThreshold or compressing does not make it
// smaller.
func Compress(frame []byte, binary bool) ([]byte, error) {
	if len(frame) < deflateThreshold {
		return frame, nil
	}
	payload := frame[headerLen(payloadLen(frame)):]
	var buf bytes.Buffer
	buf.Grow(MaxHeader + len(payload)/2)
	buf.Write(make([]byte, MaxHeader))
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	_, err := w.Write(payload)
	if err == nil {
		err = w.Flush()
	}
	deflaters.Put(w)
	if err != nil {
		return nil, err
	}
	out := buf.Bytes()
	out = bytes.TrimSuffix(out, deflateTail)
	n := len(out) - MaxHeader
	if n >= len(payload) {
		return frame, nil
	}
	start := MaxHeader - headerLen(n)
	putHeader(out[start:MaxHeader], binary, n)
	out[start] |= 0x40 // RSV1: compressed
	return out[start:], nil
}

// payloadLen reads the payload length of a server frame header.
func payloadLen(frame []byte) int {
	switch n := int(frame[1] & 0x7f); n {
	case 126:
		return int(frame[2])<<8 | int(frame[3])
	case 127:
		var v int
		for _, b := range frame[2:10] {
			v = v<<8 | int(b)
		}
		return v
	default:
		return n
	}
}
