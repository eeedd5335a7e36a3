package channel

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets check that no input makes a decoder panic, and that what
// decodes survives a round trip through the matching encoder.

func FuzzDecodeV2Text(f *testing.F) {
	for _, s := range []string{
		`["6","6","room:lobby","phx_join",{"user_id":1}]`,
		`[null,"9","phoenix","heartbeat",{}]`,
		`["1","1","t","e"]`, `[1,2,"t","e",[],"x"]`, `{`, `[]`, `["\u00e9","\"","t\\n","e",null]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V2.decode(false, data)
		if err != nil {
			return
		}
		// Re-encode as a server push carrying the same fields and decode again.
		out, _, err := V2.encode(nil, &frame{kind: kindPush, joinRef: m.JoinRef, ref: m.Ref, topic: m.Topic, event: m.Event, payload: m.Payload.Bytes()})
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		m2, err := V2.decode(false, out)
		if err != nil {
			t.Fatalf("re-decode %q: %v", out, err)
		}
		if !validUTF8Equal(m.JoinRef, m2.JoinRef) || !validUTF8Equal(m.Ref, m2.Ref) || !validUTF8Equal(m.Event, m2.Event) || !validUTF8Equal(m.Topic, m2.Topic) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

func FuzzDecodeV1(f *testing.F) {
	for _, s := range []string{
		`{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`,
		`{"topic":"t","event":"e","payload":[1],"ref":null,"join_ref":"3"}`,
		`{"topic":1}`, `[]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V1.decode(false, data)
		if err != nil {
			return
		}
		out, _, err := V1.encode(nil, &frame{kind: kindPush, ref: m.Ref, topic: m.Topic, event: m.Event, payload: m.Payload.Bytes()})
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, err := V1.decode(false, out); err != nil {
			t.Fatalf("re-decode %q: %v", out, err)
		}
	})
}

func FuzzDecodeV2Binary(f *testing.F) {
	f.Add([]byte{0, 2, 3, 5, 5, '1', '2', '1', '2', '3', 't', 'o', 'p', 'i', 'c', 'e', 'v', 'e', 'n', 't', 'e', 'f', 'g'})
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V2.decode(true, data)
		if err != nil {
			return
		}
		// Rebuild the client frame and compare it with the input.
		var b bytes.Buffer
		b.WriteByte(0)
		for _, s := range []string{m.JoinRef, m.Ref, m.Topic, m.Event} {
			b.WriteByte(byte(len(s)))
		}
		for _, s := range []string{m.JoinRef, m.Ref, m.Topic, m.Event} {
			b.WriteString(s)
		}
		b.Write(m.Payload.Bytes())
		if !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("round trip: %x != %x", b.Bytes(), data)
		}
	})
}

// validUTF8Equal compares strings after the encoder's replacement of each
// invalid UTF-8 byte with U+FFFD.
func validUTF8Equal(a, b string) bool { return fixUTF8(a) == fixUTF8(b) }

func fixUTF8(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		sb.WriteRune(r) // RuneError for an invalid byte, one per byte
		i += n
	}
	return sb.String()
}
