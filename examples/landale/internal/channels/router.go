package channels

import (
	"github.com/pyre-go/pyre/channel"
)

// Router returns Landale's UserSocket routes, first match wins:
//
//	dashboard:services  ServicesChannel
//	dashboard:*         DashboardChannel
//	events:*            EventsChannel
//	overlay:*           OverlayChannel
//	stream:*            StreamChannel
//	transcription:*     TranscriptionChannel
//
// Any other topic is refused with "unmatched topic". deps must have Bus,
// World, Producer and Transcripts set; the rest have defaults.
func Router(deps *Deps) *channel.Router {
	d := deps.withDefaults()
	r := channel.NewRouter()
	r.Handle("dashboard:services", func() channel.Channel { return &Services{base: base{d: d}} })
	r.Handle("dashboard:*", func() channel.Channel { return &Dashboard{base: base{d: d}} })
	r.Handle("events:*", func() channel.Channel { return &Events{base: base{d: d}} })
	r.Handle("overlay:*", func() channel.Channel { return &Overlay{base: base{d: d}} })
	r.Handle("stream:*", func() channel.Channel { return &Stream{base: base{d: d}} })
	r.Handle("transcription:*", func() channel.Channel { return &Transcription{base: base{d: d}} })
	return r
}
