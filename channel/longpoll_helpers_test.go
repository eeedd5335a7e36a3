package channel

import "github.com/pyre-go/pyre/channel/internal/longpoll"

// Logical statuses of LongPoll answers (see LongPollOptions).
const (
	lpOK         = 200
	lpNoContent  = 204
	lpBadRequest = 400
	lpForbidden  = 403
	lpTimeout    = 408
	lpGone       = 410
	lpTooLarge   = 413
)

// longPoll returns the Server's LongPoll state (nil unless Options.LongPoll).
func (s *Server) longPoll() *longpoll.State { return s.lp }
