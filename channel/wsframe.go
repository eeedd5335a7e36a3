package channel

import "github.com/pyre-go/pyre/channel/internal/wstransport"

// Outbound frames go to WebSocket connections as complete WebSocket frames
// (package wstransport frames them): a server frame is unmasked, so the
// bytes of a broadcast's frame are the same for every subscriber of a
// serializer, and are built once per broadcast and cached on the shared
// Frame.

// encodeWS returns f as one complete WebSocket frame for serializer s.
func (s Serializer) encodeWS(f *frame) ([]byte, bool, error) {
	buf := make([]byte, wstransport.MaxHeader, wstransport.MaxHeader+len(f.payload)+len(f.topic)+len(f.event)+len(f.joinRef)+len(f.ref)+48)
	buf, bin, err := s.encode(buf, f)
	if err != nil {
		return nil, false, err
	}
	return wstransport.FinishFrame(buf, bin), bin, nil
}

// wireWS returns the frame as a complete WebSocket frame, built once per
// serializer (and compression) for shared broadcast frames. With deflate,
// large frames are compressed (wstransport.Compress).
func (f *Frame) wireWS(s Serializer, deflate bool) ([]byte, error) {
	build := func() ([]byte, error) {
		b, bin, err := s.encodeWS(&f.f)
		if err != nil || !deflate {
			return b, err
		}
		return wstransport.Compress(b, bin)
	}
	if f.cache == nil {
		return build()
	}
	i := 0
	if s == V2 {
		i = 1
	}
	if deflate {
		i += 2
	}
	c := f.cache
	c.wsOnce[i].Do(func() { c.ws[i], c.wsErr[i] = build() })
	return c.ws[i], c.wsErr[i]
}
